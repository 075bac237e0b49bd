import Foundation

/// Finds and loads the tokenizer of a file or folder.
///
/// | path | loads |
/// |---|---|
/// | `*.gguf` | the vocabulary in its metadata: `SentencePieceBPE` (`llama`) or `ByteLevelBPE` (`gpt2`) |
/// | `*.model` | a SentencePiece protobuf: `SentencePieceBPE` |
/// | `*.json` (`tokenizer.json`) | `SentencePieceBPE` or `ByteLevelBPE`, with `tokenizer_config.json` and `generation_config.json` beside it |
/// | a folder | its `tokenizer.json`, else `tokenizer.model`, else `tokenizer.bin` |
/// | any other file (`tokenizer.bin`, `tok512.bin`) | a llama2.c vocabulary: `SentencePieceBPE` |
public enum TokenizerLoader {
    /// The tokenizer at `url`, chosen by what the path is (see the type's table).
    /// - Throws: `TokenizerError` naming the file and the problem.
    public static func load(url: URL) throws -> any Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError.missingFile(url.path)
        }
        if isDirectory.boolValue {
            for name in ["tokenizer.json", "tokenizer.model", "tokenizer.bin"] {
                let candidate = url.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: candidate.path) { return try load(url: candidate) }
            }
            throw TokenizerError.unknownFormat(url.path)
        }
        switch url.pathExtension.lowercased() {
        case "gguf":
            return try load(gguf: try GGUFFile(url: url))
        case "model":
            return try SentencePieceBPE.sentencePieceModel(url: url)
        case "json":
            return try HuggingFaceTokenizer.load(url: url)
        case "bin":
            return try SentencePieceBPE.llama2c(url: url)
        default:
            // Sniff: GGUF magic, a protobuf model (starts with field 1, length-delimited), else unknown.
            let file = try openTokenizerFile(url)
            if file.count >= 4, file.bytes.loadUnaligned(as: UInt32.self) == 0x4655_4747 {
                return try load(gguf: try GGUFFile(file: file))
            }
            if file.count >= 1, file.bytes[0] == 0x0A { return try SentencePieceBPE.sentencePieceModel(url: url) }
            if file.count >= 1, file.bytes[0] == UInt8(ascii: "{") { return try HuggingFaceTokenizer.load(url: url) }
            throw TokenizerError.unknownFormat(url.path)
        }
    }

    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`).
    /// - Throws: `TokenizerError.unsupportedModel` for vocabulary types other than `llama` and `gpt2`.
    public static func load(gguf: GGUFFile) throws -> any Tokenizer {
        guard let model = gguf.metadata["tokenizer.ggml.model"]?.stringValue else {
            throw TokenizerError.missingField(gguf.path, "tokenizer.ggml.model")
        }
        switch model {
        case "llama": return try SentencePieceBPE.gguf(gguf)
        case "gpt2": return try ByteLevelBPE.gguf(gguf)
        default:
            throw TokenizerError.unsupportedModel(gguf.path, found: model,
                                                 supported: ["llama (SentencePiece BPE)", "gpt2 (byte-level BPE)"])
        }
    }
}
