import Foundation
import Testing
@testable import BalconyCore

/// One case of `gguf_pretokenizer_splits.json`: the words Hugging Face `tokenizers` makes of a
/// text with the pre-tokenizer equivalent to llama.cpp's rules for a `tokenizer.ggml.pre` value
/// (scripts/make_pretokenizer_fixtures.py).
struct GGUFSplitCase: CustomTestStringConvertible, Sendable {
    let pre: String
    let text: String
    let words: [String]
    var testDescription: String { "\(pre) \(text.debugDescription.prefix(40))" }

    static let all: [GGUFSplitCase] = {
        guard let data = try? Data(contentsOf: TokenizerAssets.fixture("gguf_pretokenizer_splits.json")),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.compactMap { e in
            guard let pre = e["pre"] as? String, let text = e["text"] as? String,
                  let words = e["words"] as? [String] else { return nil }
            return GGUFSplitCase(pre: pre, text: text, words: words)
        }
    }()
}

@Suite struct TokenizerGGUFPreTokenizerTests {
    /// The names issue 15 lists; each must have reference splits, so a name dropped from the
    /// fixture script fails here instead of going untested.
    static let required = ["llama-bpe", "smollm", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder", "deepseek-v3",
                           "falcon", "mpt", "starcoder", "refact", "tekken", "command-r", "olmo", "dbrx", "smaug-bpe"]

    @Test func everyRequiredNameHasCases() {
        let names = Set(GGUFSplitCase.all.map(\.pre))
        for name in Self.required {
            #expect(names.contains(name), "no reference splits for \(name)")
            #expect(PreTokenizer.gguf(pre: name) != nil, "no rules for \(name)")
        }
        #expect(GGUFSplitCase.all.count == 304)
    }

    @Test(arguments: GGUFSplitCase.all)
    func splitsLikeReference(_ c: GGUFSplitCase) throws {
        let rules = try #require(PreTokenizer.gguf(pre: c.pre))
        let scalars = Array(c.text.unicodeScalars)
        var words: [String] = []
        var start = 0
        for end in rules.preTokenizer.split(scalars) {
            var w = String.UnicodeScalarView()
            w.append(contentsOf: scalars[start..<end])
            words.append(String(w))
            start = end
        }
        #expect(words == c.words)
    }

    /// SmolLM's digits: each its own word even where GPT-2's regex alone would keep " 123" whole.
    @Test func smollmIsolatesDigits() throws {
        let p = try #require(PreTokenizer.gguf(pre: "smollm")).preTokenizer
        let text = "x 123"
        let scalars = Array(text.unicodeScalars)
        #expect(p.split(scalars) == [1, 2, 3, 4, 5])
        #expect(PreTokenizer([.gpt2]).split(scalars) == [1, 5])
    }
}

/// A SmolLM-style vocabulary (trained with digit merges, used with SmolLM's pre-tokenizer) as
/// tokenizer.json and as a GGUF with `tokenizer.ggml.pre = smollm`: both give `tokenizers`' ids.
@Suite struct SmolLMVocabularyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let text: String
        let ids: [Int]
        var testDescription: String { text.debugDescription }
    }

    static let cases: [Case] = {
        guard let data = try? Data(contentsOf: TokenizerAssets.fixture("smollm_cases.json")),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.compactMap { e in
            guard let t = e["text"] as? String, let ids = e["ids"] as? [Int] else { return nil }
            return Case(text: t, ids: ids)
        }
    }()

    static func tokenizers() throws -> [any Tokenizer] {
        [try TokenizerAssets.cached("smollm.json") { try TokenizerLoader.load(url: TokenizerAssets.fixture("bytelevel-smollm")) },
         try TokenizerAssets.cached("smollm.gguf") { try TokenizerLoader.load(url: TokenizerAssets.fixture("bytelevel-smollm.gguf")) }]
    }

    @Test func casesArePresent() {
        #expect(Self.cases.count == 22)
    }

    @Test(arguments: cases)
    func encodesLikeTokenizers(_ c: Case) throws {
        for t in try Self.tokenizers() {
            #expect(t.encode(c.text) == c.ids, "\(t.kind)")
        }
    }

    /// The vocabulary does hold digit merges, so the cases above would fail with GPT-2's splitting alone.
    @Test func digitMergesExistButDoNotApply() throws {
        let gguf = try Self.tokenizers()[1] as! ByteLevelBPE
        #expect(gguf.preTokenizer == PreTokenizer([.digit, .gpt2]))
        let plain = try ByteLevelBPE(tokens: gguf.tokens, types: gguf.types, merges: Self.merges(), preTokenizer: PreTokenizer([.gpt2]),
                                     bosTokenId: nil, eosTokenIds: [])
        #expect(plain.encode("x 123 4567 89") != gguf.encode("x 123 4567 89"))
    }

    static func merges() throws -> [(String, String)] {
        let data = try Data(contentsOf: TokenizerAssets.fixture("bytelevel-smollm/tokenizer.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try #require(root["model"] as? [String: Any])
        let list = try #require(model["merges"] as? [[String]])
        return list.map { ($0[0], $0[1]) }
    }
}
