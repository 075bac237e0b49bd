import Foundation
import Testing
@testable import BalconyCore

/// Telling formats apart and finding tokenizers (ModelLoader.load(path:)).
@Suite struct ModelLoaderTests {
    static let stories = ModelFixtures.shared.appendingPathComponent("models/stories260K/stories260K.bin")

    @Test func huggingFaceFolder() throws {
        let folder = ModelFixtures.model("qwen2-tied").appendingPathComponent("hf-f32")
        let loaded = try ModelLoader.load(path: folder.path)
        #expect(loaded.format == "huggingface")
        #expect(loaded.gguf == nil)
        #expect(loaded.tokenizerHint == folder)
        #expect(loaded.weights.config.architecture == "qwen2")
        // The weights file itself leads to its folder.
        let viaFile = try ModelLoader.load(path: folder.appendingPathComponent("model.safetensors").path)
        #expect(viaFile.format == "huggingface" && viaFile.source.standardizedFileURL == folder.standardizedFileURL)
    }

    @Test func ggufFile() throws {
        let url = ModelFixtures.model("llama-gqa").appendingPathComponent("gguf-q8_0.gguf")
        let loaded = try ModelLoader.load(path: url.path)
        #expect(loaded.format == "gguf")
        #expect(loaded.gguf?.metadata["general.architecture"]?.stringValue == "llama")
        #expect(loaded.tokenizerHint == nil)
        #expect(loaded.weights.config.ropeStyle == .interleaved)
        // Q8_0 weights are used in place: they point into the file's mapping.
        let mapped = try #require(loaded.gguf?.file.bytes)
        let start = try #require(mapped.baseAddress)
        for m in [loaded.weights.tokenEmbedding, loaded.weights.layers[1].wq] {
            #expect(m.data >= start && m.data + m.byteCount <= start + mapped.count)
        }
    }

    @Test func llama2cCheckpointFindsItsTokenizer() throws {
        let loaded = try ModelLoader.load(path: Self.stories.path)
        #expect(loaded.format == "llama2.c")
        #expect(loaded.weights.config.dim == 64 && loaded.weights.config.vocabSize == 512)
        // shared/models/stories260K has tok512.bin and no tokenizer.bin.
        #expect(loaded.tokenizerHint?.lastPathComponent == "tok512.bin")

        // tokenizer.bin wins over tok*.bin.
        let temp = try TemporaryDirectory()
        let model = try temp.copy(Self.stories, as: "model.bin")
        for name in ["tok4096.bin", "tokenizer.bin", "tok512.bin"] { try Data([0]).write(to: temp.file(name)) }
        #expect(try ModelLoader.load(path: model.path).tokenizerHint?.lastPathComponent == "tokenizer.bin")
        try FileManager.default.removeItem(at: temp.file("tokenizer.bin"))
        #expect(try ModelLoader.load(path: model.path).tokenizerHint?.lastPathComponent == "tok4096.bin")
        try FileManager.default.removeItem(at: temp.file("tok4096.bin"))
        try FileManager.default.removeItem(at: temp.file("tok512.bin"))
        #expect(try ModelLoader.load(path: model.path).tokenizerHint == nil)
    }

    @Test func hubReferencesGoThroughTheResolver() throws {
        let folder = ModelFixtures.model("llama-gqa").appendingPathComponent("hf-bf16")
        var asked: [String] = []
        let loaded = try ModelLoader.load(path: "hf:someone/tiny-llama") { repository in
            asked.append(repository)
            return folder
        }
        #expect(asked == ["someone/tiny-llama"])
        #expect(loaded.format == "huggingface" && loaded.source == folder)
        expectModelFileError(["hf:someone/tiny-llama", "resolver"]) { if case .cannotOpen = $0 { return true }; return false } _: {
            _ = try ModelLoader.load(path: "hf:someone/tiny-llama")
        }
    }

    @Test(arguments: [
        ("empty", Data()),
        ("text", Data("Once upon a time there was a model file that was not one.\n".utf8)),
        ("zeros", Data(count: 4096)),
        ("json", Data("{\"hidden_size\": 64, \"vocab_size\": 128}".utf8)),
        ("short", Data([0x47, 0x47])),
    ])
    func unrecognizedFilesAreUnknownFormat(_ name: String, _ bytes: Data) throws {
        let temp = try TemporaryDirectory()
        let url = temp.file(name + ".bin")
        try bytes.write(to: url)
        expectModelFileError(["cannot tell the format", url.path]) { if case .unknownFormat = $0 { return true }; return false } _: {
            _ = try ModelLoader.load(path: url.path)
        }
    }

    @Test func missingPathIsCannotOpen() {
        expectModelFileError(["/no/such/model.gguf"]) { if case .cannotOpen = $0 { return true }; return false } _: {
            _ = try ModelLoader.load(path: "/no/such/model.gguf")
        }
    }

    @Test func loneSafetensorsFileWithoutConfig() throws {
        let temp = try TemporaryDirectory()
        let url = try temp.copy(SafetensorsTests.pythonFile, as: "model.safetensors")
        expectModelFileError(["config.json"]) { if case .unknownFormat = $0 { return true }; return false } _: {
            _ = try ModelLoader.load(path: url.path)
        }
    }

    @Test func truncatedGGUFIsTruncatedNotUnknown() throws {
        let temp = try TemporaryDirectory()
        let cut = try temp.truncatedCopy(of: ModelFixtures.model("qwen2-tied").appendingPathComponent("gguf-f16.gguf"), length: 5000, as: "cut.gguf")
        expectModelFileError(["truncated"]) { if case .truncated = $0 { return true }; return false } _: {
            _ = try ModelLoader.load(path: cut.path)
        }
    }

    @Test func sniffing() throws {
        func sniff(_ bytes: [UInt8]) -> ModelLoader.Sniffed {
            bytes.withUnsafeBytes { ModelLoader.sniff($0) }
        }
        func ints(_ v: [Int32]) -> [UInt8] { v.flatMap { x in withUnsafeBytes(of: x.littleEndian) { Array($0) } } }
        #expect(sniff(Array("GGUF".utf8) + [3, 0, 0, 0]) == .gguf)
        #expect(sniff(ints([0x616B_3432, 1])) == .llama2c)
        #expect(sniff(ints([288, 768, 6, 6, 6, 32000, 256])) == .llama2c)        // stories15M
        #expect(sniff(ints([288, 768, 6, 6, 6, -32000, 256])) == .llama2c)       // unshared classifier
        #expect(sniff(ints([288, 768, 6, 6, 4, 32000, 256])) == .unknown)        // 6 heads, 4 kv heads
        #expect(sniff(ints([288, 768, 6, 5, 5, 32000, 256])) == .unknown)        // 288 not divisible by 5
        #expect(sniff(ints([2, 0]) + Array("{}".utf8)) == .safetensors)
        #expect(sniff([]) == .unknown)
    }
}
