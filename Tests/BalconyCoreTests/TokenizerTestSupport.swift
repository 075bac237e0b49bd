import Foundation
import Testing
@testable import BalconyCore

/// Paths of test assets. Shared read-only assets live in `../shared` beside the package root;
/// committed fixtures under `Tests/BalconyCoreTests/Fixtures`.
enum TokenizerAssets {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let shared = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    static let fixtures = packageRoot.appendingPathComponent("Tests/BalconyCoreTests/Fixtures/tokenizers")

    static func sharedFile(_ relative: String) -> URL { shared.appendingPathComponent(relative) }
    static func fixture(_ relative: String) -> URL { fixtures.appendingPathComponent(relative) }

    /// Loads each tokenizer once per test process: the LLaMA-2 and GPT-2 vocabularies take a
    /// noticeable time to build in debug builds.
    static func cached(_ key: String, _ make: () throws -> any Tokenizer) throws -> any Tokenizer {
        try cache.get(key, make)
    }

    private static let cache = TokenizerCache()
}

final class TokenizerCache: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: any Tokenizer] = [:]

    func get(_ key: String, _ make: () throws -> any Tokenizer) throws -> any Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let t = values[key] { return t }
        let t = try make()
        values[key] = t
        return t
    }
}

/// One case of llama.cpp's `test-tokenizer-0` vectors.
struct VocabCase: CustomTestStringConvertible, Sendable {
    let index: Int
    let text: String
    let ids: [Int]
    var testDescription: String { "#\(index) \(text.debugDescription.prefix(40))" }

    /// Reads `NAME.inp` / `NAME.out`: strings separated by "\n__ggml_vocab_test__\n" (the file
    /// ends with a separator), one line of ids per string.
    static func load(_ gguf: String) -> [VocabCase] {
        let base = TokenizerAssets.sharedFile("tokenizers/llama.cpp-vocab/\(gguf)")
        guard let inp = try? String(contentsOf: base.appendingPathExtension("inp"), encoding: .utf8),
              let out = try? String(contentsOf: base.appendingPathExtension("out"), encoding: .utf8) else { return [] }
        var texts = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        var lines = out.components(separatedBy: "\n")
        if texts.last == "" && lines.last == "" {
            texts.removeLast()
            lines.removeLast()
        }
        precondition(texts.count == lines.count, "\(gguf): \(texts.count) strings but \(lines.count) id lines")
        return zip(texts, lines).enumerated().map { i, pair in
            VocabCase(index: i, text: pair.0,
                      ids: pair.1.split(separator: " ").map { Int($0)! })
        }
    }
}
