import ArgumentParser
import BalconyCore
import Foundation

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Per-exit perplexity, KL from the full model and agreement, beside the early-exit baseline.")

    @OptionGroup var options: ModelOptions
    @Option(help: "Balcony file.") var balconies: String?
    @Option(help: "Evaluate untrained balconies at these exits instead (copies of the last layer, the authors' init).")
    var copyInitExits: String?
    @Option(parsing: .upToNextOption, help: "Text files to evaluate on.") var data: [String]
    @Option(help: "Evaluate at most this many tokens per file.") var maxTokens: Int = 20000
    @Flag(help: "Skip the early-exit baseline.") var noBaseline = false
    @Option(help: "Write results.json into this folder.") var out: String?
    @Flag(help: "Print JSON.") var json = false

    struct FileResult: Codable {
        var file: String
        var tokens: Int
        var rows: [ExitQuality]
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load()
            let tok = try rt.requiredTokenizer
            let params: [BalconyParameters]
            if let file = balconies {
                params = try BalconyFile.read(from: URL(fileURLWithPath: file), base: rt.model.weights).balconies
            } else if let list = copyInitExits {
                params = try parseExitList(list).map { try BalconyParameters.copyInitialized(from: rt.model.weights, exit: $0) }
            } else {
                throw ValidationError("give --balconies FILE or --copy-init-exits LIST")
            }
            let model = try BalconyModel(base: rt.model, balconies: params, source: balconies ?? "copy init")
            var results: [FileResult] = []
            for file in data {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ModelFileError.cannotOpen(file, "not a readable UTF-8 text file")
                }
                let ids = Array(tok.encodeForModel(text).prefix(maxTokens))
                guard ids.count >= 2 else { throw GenerationError.invalidParameter("\(file) has fewer than two tokens to evaluate") }
                let rows = try ExitEvaluation.evaluate(model: model, tokens: ids, earlyExit: !noBaseline)
                results.append(FileResult(file: file, tokens: ids.count, rows: rows))
            }
            if let out {
                let dir = URL(fileURLWithPath: out)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try AtomicFileWriter.write(Data(try jsonLine(results).utf8), to: dir.appendingPathComponent("results.json"))
            }
            if json { print(try jsonLine(results)); return }
            for r in results {
                print("\(r.file) (\(r.tokens) tokens)")
                print("method       exit    cost   perplexity  ppl/full       KL  agreement")
                let fullPPL = r.rows.first { $0.method == "full" }?.perplexity ?? 1
                for q in r.rows {
                    let method = q.method.padding(toLength: 11, withPad: " ", startingAt: 0)
                    let exit = String(repeating: " ", count: max(0, 5 - (q.exit.map(String.init) ?? "-").count)) + (q.exit.map(String.init) ?? "-")
                    print(String(format: "%@ %@  %6.3f  %11.3f  %8.2fx  %7.3f  %8.1f%%", method, exit,
                                 q.cost, q.perplexity, q.perplexity / fullPPL, q.kl, 100 * q.agreement))
                }
            }
        }
    }
}
