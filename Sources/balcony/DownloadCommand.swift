import ArgumentParser
import BalconyCore
import Foundation

struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a Hugging Face model repository into the cache (resumable, verified).",
        discussion: """
        Files go to the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) in
        huggingface_hub's layout, so models already downloaded by Python tools are reused. $HF_ENDPOINT and $HF_TOKEN
        are honoured; HF_HUB_OFFLINE=1 resolves from the cache only. Prints the local path on stdout.
        """)

    @Argument(help: "OWNER/NAME, optionally with a subfolder (OWNER/NAME/FOLDER) or hf: prefix.") var repository: String
    @Option(help: "Branch, tag or commit.") var revision: String?
    @Option(help: "Only files matching this glob (repeatable). Default: what is needed to run a model.")
    var include: [String] = []

    func run() async throws {
        try await reportingErrors {
            var ref = try HubModelReference(parsing: repository.hasPrefix("hf:") ? repository : "hf:" + repository)
            if let revision { ref.revision = revision }
            let bar = ProgressBar()
            let url = try await ref.resolve(using: HubClient(configuration: .fromEnvironment()), include: include) { p in
                bar.update("[\(p.fileIndex + 1)/\(p.fileCount)] \(p.file)", done: p.bytesDone, total: p.bytesTotal,
                           force: p.bytesDone == p.bytesTotal)
            }
            bar.finish()
            print(url.path)
        }
    }
}
