import ArgumentParser
import BalconyCore
import Foundation

struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print the token ids of a text.")

    @Argument(help: "A model (its tokenizer is used), a tokenizer file/folder, or any GGUF file (only its vocabulary is read). Default: stories260K.")
    var modelOrTokenizer: String?
    @Option(help: "Tokenizer file, when the model's own is not wanted.") var tokenizer: String?
    @Option(help: "Threads (accepted for uniformity; tokenizing is single-threaded).") var threads: Int?
    @Option(help: "Text to tokenize.") var text: String
    @Flag(help: "Prepend BOS.") var bos = false
    @Flag(help: "Print JSON with ids and pieces.") var json = false

    struct Output: Codable {
        var ids: [Int]
        var pieces: [String]
    }

    func run() async throws {
        try await reportingErrors {
            let tok = try await loadTokenizer()
            var ids = tok.encode(text)
            if bos, let b = tok.bosTokenId { ids.insert(b, at: 0) }
            if json {
                print(try jsonLine(Output(ids: ids, pieces: ids.map { tok.piece(for: $0) })))
            } else {
                print(ids.map(String.init).joined(separator: " "))
            }
        }
    }

    /// A tokenizer file is loaded directly; anything else is treated as a model and its tokenizer used.
    /// A GGUF file's vocabulary is read from its metadata alone, so vocabulary-only files and
    /// architectures Balcony cannot run tokenize too, and a vocabulary problem is reported as such
    /// rather than as a model that failed to load.
    func loadTokenizer() async throws -> any Tokenizer {
        if let t = tokenizer {
            return try TokenizerLoader.load(url: URL(fileURLWithPath: try await ModelPaths.resolve(t)))
        }
        let path = try await ModelPaths.resolve(modelOrTokenizer ?? DefaultModel.path)
        let url = URL(fileURLWithPath: path)
        do {
            return try TokenizerLoader.load(url: url)
        } catch {
            if url.pathExtension.lowercased() == "gguf" { throw error }
        }
        let loaded = try ModelLoader.load(path: path)
        if let g = loaded.gguf { return try TokenizerLoader.load(gguf: g) }
        if let hint = loaded.tokenizerHint { return try TokenizerLoader.load(url: hint) }
        throw ModelFileError.missingTokenizer(path)
    }
}
