import Foundation
import Testing
@testable import BalconyCore

/// llama.cpp's `test-tokenizer-0` vectors: every case of both vocabularies, reproduced exactly.
@Suite struct TokenizerVocabTests {
    static let spmCases = VocabCase.load("ggml-vocab-llama-spm.gguf")
    static let gpt2Cases = VocabCase.load("ggml-vocab-gpt-2.gguf")
    static let deepseekCases = VocabCase.load("ggml-vocab-deepseek-llm.gguf")
    static let refactCases = VocabCase.load("ggml-vocab-refact.gguf")

    static func spm() throws -> any Tokenizer {
        try TokenizerAssets.cached("llama-spm.gguf") {
            try TokenizerLoader.load(url: TokenizerAssets.sharedFile("tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf"))
        }
    }

    static func gpt2() throws -> any Tokenizer {
        try TokenizerAssets.cached("gpt-2.gguf") {
            try TokenizerLoader.load(url: TokenizerAssets.sharedFile("tokenizers/llama.cpp-vocab/ggml-vocab-gpt-2.gguf"))
        }
    }

    static func vocab(_ name: String) throws -> any Tokenizer {
        try TokenizerAssets.cached(name) {
            try TokenizerLoader.load(url: TokenizerAssets.sharedFile("tokenizers/llama.cpp-vocab/ggml-vocab-\(name)"))
        }
    }

    @Test func vectorFilesArePresent() {
        // 46 strings each (the empty string among them); a missing file must fail, not skip.
        #expect(Self.spmCases.count == 46)
        #expect(Self.gpt2Cases.count == 46)
        #expect(Self.deepseekCases.count == 46)
        #expect(Self.refactCases.count == 46)
    }

    /// deepseek-llm: six regexes in sequence (newlines, letters, punctuation, trailing space, CJK, digits).
    @Test(arguments: deepseekCases)
    func deepseekLLM(_ c: VocabCase) throws {
        let t = try Self.vocab("deepseek-llm.gguf")
        #expect(t.encode(c.text) == c.ids)
    }

    /// refact: each digit its own word, then GPT-2's regex.
    @Test(arguments: refactCases)
    func refact(_ c: VocabCase) throws {
        let t = try Self.vocab("refact.gguf")
        #expect(t.encode(c.text) == c.ids)
    }

    @Test(arguments: spmCases)
    func llamaSPM(_ c: VocabCase) throws {
        let t = try Self.spm()
        #expect(t.kind == "sentencepiece-bpe")
        #expect(t.encode(c.text) == c.ids)
    }

    @Test(arguments: gpt2Cases)
    func gpt2(_ c: VocabCase) throws {
        let t = try Self.gpt2()
        #expect(t.kind == "byte-level-bpe")
        #expect(t.encode(c.text) == c.ids)
    }

    @Test func specialTokensFromMetadata() throws {
        let s = try Self.spm()
        #expect(s.vocabularySize == 32000)
        #expect(s.bosTokenId == 1 && s.eosTokenIds == [2] && s.addsBOS)
        #expect(s.encodeForModel("Hello") == [1, 15043])
        let g = try Self.gpt2()
        #expect(g.vocabularySize == 50257)
        #expect(g.bosTokenId == 50256 && g.eosTokenIds == [50256] && !g.addsBOS)
        #expect(g.encodeForModel("Hello") == [15496])
    }
}
