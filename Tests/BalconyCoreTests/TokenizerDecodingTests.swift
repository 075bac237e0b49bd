import Foundation
import Testing
@testable import BalconyCore

/// Decoding rules and the streaming decoder. Ids here come from `sentencepiece` (tok512.model) and
/// llama.cpp's GPT-2 vectors, or from the llama2.c convention that byte b is id b + 3.
@Suite struct TokenizerDecodingTests {
    static func tok512() throws -> any Tokenizer {
        try TokenizerAssets.cached("tok512.bin") {
            try TokenizerLoader.load(url: TokenizerAssets.sharedFile("models/stories260K/tok512.bin"))
        }
    }

    @Test func multiByteCharacterOverByteFallbackComesOutWhole() throws {
        let t = try Self.tok512()
        // sentencepiece: "😀" -> ▁ <0xF0> <0x9F> <0x98> <0x80>
        let ids = [410, 243, 162, 155, 131]
        #expect(t.encode("😀") == ids)
        var stream = StreamingDecoder(tokenizer: t, previous: 1)
        let chunks = ids.map { stream.append($0) }
        #expect(chunks == ["", "", "", "", "😀"])
        #expect(stream.finish() == "")
    }

    @Test func unfinishedCharacterIsFlushedAsReplacement() throws {
        let t = try Self.tok512()
        var stream = StreamingDecoder(tokenizer: t)
        #expect(stream.append(243) == "")  // <0xF0>
        #expect(stream.append(162) == "")  // <0x9F>
        #expect(stream.finish() == "\u{FFFD}")
    }

    @Test func characterSplitAcrossByteLevelTokens() throws {
        let t = try TokenizerVocabTests.gpt2()
        // llama.cpp's vector for " this is 🦙.cpp": the llama's 4 bytes span three tokens.
        let ids = [428, 318, 12520, 99, 247, 13, 20322]
        var stream = StreamingDecoder(tokenizer: t)
        let chunks = ids.map { stream.append($0) } + [stream.finish()]
        #expect(chunks.joined() == " this is 🦙.cpp")
        #expect(chunks.allSatisfy { !$0.contains("\u{FFFD}") })
        #expect(chunks.contains { $0.contains("🦙") })
        #expect(chunks[3] == "")  // holds back the middle of the character
    }

    @Test func dummyPrefixIsDroppedAtTheStartAndAfterBOSOnly() throws {
        let t = try Self.tok512()
        // 403 = "▁Once", 350 = "▁up"; 1 = BOS, 2 = EOS, 0 = unk.
        #expect(t.piece(for: 403) == "\u{2581}Once")
        #expect(t.decode([403, 350]) == "Once up")
        #expect(t.decode([1, 403, 350]) == "Once up")
        #expect(t.decode([403], previous: 350) == " Once")
        #expect(t.bytes(for: 403, previous: 1) == Array("Once".utf8))
        #expect(t.bytes(for: 403, previous: 350) == Array(" Once".utf8))
        #expect(t.decode([0, 1, 2]) == "")
        #expect(t.bytes(for: 13, previous: nil) == [0x0A])  // <0x0A>
        #expect(t.bytes(for: 9999, previous: nil) == [])
    }

    @Test func tok512BinAndModelAgreeOnPiecesAndSpecialIds() throws {
        let bin = try Self.tok512()
        let model = try TokenizerAssets.cached("tok512.model") {
            try TokenizerLoader.load(url: TokenizerAssets.sharedFile("models/stories260K/tok512.model"))
        }
        #expect(bin.vocabularySize == 512 && model.vocabularySize == 512)
        for id in 0..<512 where id > 2 {
            #expect(bin.piece(for: id) == model.piece(for: id), "id \(id)")
        }
        #expect(bin.bosTokenId == 1 && model.bosTokenId == 1)
        #expect(bin.eosTokenIds == [2] && model.eosTokenIds == [2])
        #expect(bin.addsBOS && model.addsBOS)
        #expect(bin.encodeForModel("Once upon") == [1, 403, 407])
        // tok512.model removes extra whitespace (its normalizer spec says so); llama2.c does not.
        #expect(model.encode("  Once   upon  ") == [403, 407])
        #expect(bin.encode("  Once   upon  ") != [403, 407])
    }

    @Test func byteLevelSpecialAndAddedTokens() throws {
        let t = try TokenizerLoader.load(url: TokenizerAssets.fixture("bytelevel-llama3"))
        #expect(t.kind == "byte-level-bpe")
        // From the fixture's tokenizer_config.json / generation_config.json / added_tokens.
        #expect(t.bosTokenId == 0 && t.addsBOS)
        #expect(t.eosTokenIds == [1, 2])
        #expect(t.piece(for: 1200) == "[[sep]]")
        #expect(t.decode([1200]) == "[[sep]]")
        #expect(t.decode([0, 1, 2]) == "")
        // Special-token text is not parsed: it is encoded as plain text.
        #expect(!t.encode("<|eot_id|>").contains(2))
    }
}
