import Foundation
import Testing
@testable import BalconyCore

/// Bad input must end in a `TokenizerError` (or a GGUF `ModelFileError`) with a useful message,
/// never in a trap.
@Suite struct TokenizerErrorTests {
    /// A fresh scratch folder per call.
    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(_ bytes: some Sequence<UInt8>, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    static func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        try write(Array(text.utf8), name, in: dir)
    }

    static func loadError(_ url: URL) -> Error? {
        do {
            _ = try TokenizerLoader.load(url: url)
            return nil
        } catch {
            return error
        }
    }

    static let tok512Bin = TokenizerAssets.sharedFile("models/stories260K/tok512.bin")
    static let tok512Model = TokenizerAssets.sharedFile("models/stories260K/tok512.model")

    @Test func truncatedTokenizerBin() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try Data(contentsOf: Self.tok512Bin)
        // 4-byte header + records of (score, length, "<unk>") ...: cut inside the 5th record.
        let url = try Self.write(bytes.prefix(70), "tokenizer.bin", in: dir)
        let error = Self.loadError(url)
        guard case let .truncated(path, needed, have)? = error as? TokenizerError else {
            Issue.record("expected TokenizerError.truncated, got \(String(describing: error))")
            return
        }
        #expect(path == url.path && have == 70 && needed > 70)
        #expect(error?.localizedDescription.contains("truncated") == true)
    }

    @Test func tokenizerBinWithImpossibleLength() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes: [UInt8] = [16, 0, 0, 0]                  // max_token_length 16
        bytes += [0, 0, 0, 0] + [0xFF, 0xFF, 0xFF, 0x7F]   // score 0, length Int32.max
        let url = try Self.write(bytes, "tokenizer.bin", in: dir)
        guard case .corrupt? = Self.loadError(url) as? TokenizerError else {
            Issue.record("expected TokenizerError.corrupt")
            return
        }
    }

    @Test func tokenizerBinShorterThanTheModelVocabulary() throws {
        #expect(throws: TokenizerError.self) { try SentencePieceBPE.llama2c(url: Self.tok512Bin, vocabularySize: 1000) }
        #expect(try SentencePieceBPE.llama2c(url: Self.tok512Bin, vocabularySize: 512).vocabularySize == 512)
    }

    /// Every cut of a valid file either loads (a cut at a record boundary of a tokenizer.bin is
    /// indistinguishable from a smaller vocabulary) or throws; none traps.
    @Test func everyTruncationThrowsOrLoads() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sources: [(URL, String)] = [
            (Self.tok512Bin, "tokenizer.bin"),
            (Self.tok512Model, "tokenizer.model"),
            (TokenizerAssets.fixture("spm-legacy/tokenizer.json"), "tokenizer.json"),
        ]
        for (source, name) in sources {
            let bytes = try Data(contentsOf: source)
            var rng = SplitMix64(seed: 7)
            var failures = 0
            for _ in 0..<40 {
                let cut = Int(rng.next() % UInt64(bytes.count))
                let url = try Self.write(bytes.prefix(cut), name, in: dir)
                if Self.loadError(url) != nil { failures += 1 }
            }
            if name != "tokenizer.bin" { #expect(failures == 40, "\(name)") }
        }
    }

    @Test func modelCheckpointIsNotATokenizer() {
        // A llama2.c model .bin passed where a tokenizer .bin belongs.
        let error = Self.loadError(TokenizerAssets.sharedFile("models/stories260K/stories260K.bin"))
        #expect(error is TokenizerError)
    }

    @Test func truncatedSentencePieceModel() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try Data(contentsOf: Self.tok512Model)
        let url = try Self.write(bytes.prefix(bytes.count / 2), "tokenizer.model", in: dir)
        guard case .truncated? = Self.loadError(url) as? TokenizerError else {
            Issue.record("expected TokenizerError.truncated")
            return
        }
    }

    @Test func unigramModelIsNamedAsUnsupported() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // ModelProto { pieces { piece: "a" score: 0 type: NORMAL } trainer_spec { model_type: UNIGRAM } }
        let piece: [UInt8] = [0x0A, 0x01, 0x61, 0x15, 0, 0, 0, 0, 0x18, 0x01]
        let trainer: [UInt8] = [0x18, 0x01]
        let bytes = [0x0A, UInt8(piece.count)] + piece + [0x12, UInt8(trainer.count)] + trainer
        let url = try Self.write(bytes, "tokenizer.model", in: dir)
        let error = Self.loadError(url)
        guard case let .unsupportedModel(_, found, supported)? = error as? TokenizerError else {
            Issue.record("expected TokenizerError.unsupportedModel, got \(String(describing: error))")
            return
        }
        #expect(found == "SentencePiece unigram" && supported == ["SentencePiece BPE"])
        #expect(error?.localizedDescription.contains("supported: SentencePiece BPE") == true)
    }

    @Test(arguments: [
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {", "corrupt"),
        ("[1, 2, 3]", "corrupt"),
        ("{\"version\": \"1.0\"}", "missingField"),
        ("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "unsupportedModel"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", "corrupt"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\"]}}", "corrupt"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Sequence\", "
            + "\"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": \"Isolated\"}, "
            + "{\"type\": \"ByteLevel\", \"use_regex\": false}]}}", "unsupportedComponent"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Whitespace\"}, "
            + "\"decoder\": {\"type\": \"ByteLevel\"}}", "unsupportedComponent"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"byte_fallback\": true}, "
            + "\"normalizer\": {\"type\": \"NFKC\"}}", "unsupportedComponent"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"▁\": 0, \"a\": 1}, \"merges\": [\"▁ b\"], \"byte_fallback\": true}}", "corrupt"),
        ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "unsupportedModel"),
    ])
    func malformedTokenizerJSON(_ json: String, _ expected: String) throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try Self.write(json, "tokenizer.json", in: dir)
        let error = Self.loadError(url)
        let kind: String
        switch error as? TokenizerError {
        case .corrupt?: kind = "corrupt"
        case .missingField?: kind = "missingField"
        case .unsupportedModel?: kind = "unsupportedModel"
        case .unsupportedComponent?: kind = "unsupportedComponent"
        default: kind = "\(String(describing: error))"
        }
        #expect(kind == expected)
        #expect(error?.localizedDescription.contains(url.path) == true)
    }

    @Test func unsupportedComponentMessageListsWhatIsSupported() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}"
        let message = Self.loadError(try Self.write(json, "tokenizer.json", in: dir))?.localizedDescription ?? ""
        #expect(message.contains("'Unigram'") && message.contains("supported: BPE"))
    }

    @Test func missingAndUnknownPaths() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("nope/tokenizer.json")
        #expect(Self.loadError(missing) as? TokenizerError == .missingFile(missing.path))
        // A folder with no tokenizer in it, and a file of no known kind.
        #expect(Self.loadError(dir) as? TokenizerError == .unknownFormat(dir.path))
        let junk = try Self.write("just some text", "vocab.txt", in: dir)
        #expect(Self.loadError(junk) as? TokenizerError == .unknownFormat(junk.path))
        #expect(TokenizerError.unknownFormat(junk.path).localizedDescription.contains("tokenizer.json"))
    }

    @Test func ggufWithUnsupportedVocabulary() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        func string(_ s: String) -> [UInt8] { withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian, Array.init) + Array(s.utf8) }
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        let gguf = Array("GGUF".utf8) + u32(3) + u64(0) + u64(1) + string("tokenizer.ggml.model") + u32(8) + string("bert")
        let error = Self.loadError(try Self.write(gguf, "vocab.gguf", in: dir))
        guard case let .unsupportedModel(_, found, supported)? = error as? TokenizerError else {
            Issue.record("expected TokenizerError.unsupportedModel, got \(String(describing: error))")
            return
        }
        #expect(found == "bert" && supported.count == 2)
        // And without any tokenizer metadata at all.
        let bare = Array("GGUF".utf8) + u32(3) + u64(0) + u64(0)
        #expect(Self.loadError(try Self.write(bare, "bare.gguf", in: dir)) as? TokenizerError
            == .missingField(dir.appendingPathComponent("bare.gguf").path, "tokenizer.ggml.model"))
    }

    @Test func unknownGGUFPreTokenizer() {
        #expect(PreTokenizer.gguf(pre: "llama-bpe") == .init(preTokenizer: PreTokenizer([.llama3]), ignoreMerges: true))
        #expect(PreTokenizer.gguf(pre: "dbrx") == .init(preTokenizer: PreTokenizer([.llama3]), ignoreMerges: false))
        #expect(PreTokenizer.gguf(pre: "qwen2")?.preTokenizer == PreTokenizer([.qwen2]))
        #expect(PreTokenizer.gguf(pre: "gpt-2")?.preTokenizer == PreTokenizer([.gpt2]))
        #expect(PreTokenizer.gguf(pre: "smollm")?.preTokenizer == PreTokenizer([.digit, .gpt2]))
        #expect(PreTokenizer.gguf(pre: "no-such-pre") == nil)
        for name in PreTokenizer.supportedGGUFNames { #expect(PreTokenizer.gguf(pre: name) != nil) }
    }
}

/// A tiny deterministic generator for test inputs.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
