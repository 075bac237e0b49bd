import Foundation

/// A model read from disk, with what is needed to find its tokenizer.
public struct LoadedModel: Sendable {
    public var weights: ModelWeights
    /// The file or folder the weights came from (after `hf:` resolution).
    public var source: URL
    /// "llama2.c", "gguf" or "huggingface".
    public var format: String
    /// The parsed GGUF file, which also holds the tokenizer (`tokenizer.ggml.*`).
    public var gguf: GGUFFile?
    /// Where a tokenizer probably is: the model folder for Hugging Face models; for llama2.c the
    /// first of `tokenizer.bin`, then `tok*.bin` beside the checkpoint; nil for GGUF.
    public var tokenizerHint: URL?

    public init(weights: ModelWeights, source: URL, format: String, gguf: GGUFFile? = nil, tokenizerHint: URL? = nil) {
        self.weights = weights
        self.source = source
        self.format = format
        self.gguf = gguf
        self.tokenizerHint = tokenizerHint
    }
}

/// Opens any model Balcony can run, telling the format from what the path is.
public enum ModelLoader {
    /// Resolves `OWNER/NAME` (the part after `hf:`) to a local Hugging Face model folder,
    /// downloading it if needed. Supplied by the Hub client; the library's IO never touches the network.
    public typealias HubResolver = (_ repository: String) throws -> URL

    /// The prefix of Hugging Face Hub references.
    public static let hubPrefix = "hf:"

    /// Loads the model at `path`:
    /// - `hf:OWNER/NAME`: resolved to a folder by `resolver`, then loaded as a Hugging Face folder;
    /// - a directory (or a `.safetensors` file inside one with a `config.json`): Hugging Face;
    /// - a file starting with `GGUF`: GGUF;
    /// - a file starting with llama2.c's `ak42` magic or a plausible legacy header: llama2.c.
    /// - Throws: `.unknownFormat` for empty or unrecognized files, `.cannotOpen` for missing paths,
    ///   and the chosen loader's errors.
    public static func load(path: String, resolver: HubResolver? = nil) throws -> LoadedModel {
        if path.hasPrefix(hubPrefix) {
            let repository = String(path.dropFirst(hubPrefix.count))
            guard let resolver else {
                throw ModelFileError.cannotOpen(path, "Hub references need a download resolver, and none was given")
            }
            return try loadHuggingFace(directory: resolver(repository))
        }
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ModelFileError.cannotOpen(path, "no such file or directory")
        }
        if isDirectory.boolValue { return try loadHuggingFace(directory: url) }

        let file = try MappedFile(url: url)
        switch sniff(file.bytes) {
        case .gguf:
            let gguf = try GGUFFile(file: file)
            return LoadedModel(weights: try GGUFModelLoader.load(file: gguf), source: url, format: "gguf", gguf: gguf)
        case .safetensors:
            let directory = url.deletingLastPathComponent()
            guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
                throw ModelFileError.unknownFormat(path + " (a safetensors file without a config.json beside it; pass the model folder)")
            }
            return try loadHuggingFace(directory: directory)
        case .llama2c:
            let weights = try Llama2cCheckpoint.load(url: url)
            return LoadedModel(weights: weights, source: url, format: "llama2.c", tokenizerHint: llama2cTokenizer(beside: url))
        case .unknown:
            throw ModelFileError.unknownFormat(path)
        }
    }

    private static func loadHuggingFace(directory: URL) throws -> LoadedModel {
        LoadedModel(weights: try HuggingFaceModelLoader.load(directory: directory), source: directory,
                    format: "huggingface", tokenizerHint: directory)
    }

    enum Sniffed: Equatable { case gguf, safetensors, llama2c, unknown }

    /// Tells the format from the first bytes.
    static func sniff(_ bytes: UnsafeRawBufferPointer) -> Sniffed {
        guard bytes.count >= 8 else { return .unknown }
        let magic = bytes.loadUnaligned(as: UInt32.self)
        if magic == 0x4655_4747 { return .gguf }           // "GGUF"
        if magic == 0x616B_3432 { return .llama2c }        // llama2.c versioned export, "ak42"
        // safetensors: a header length that fits the file, then '{'.
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        if headerLength >= 2, headerLength <= UInt64(bytes.count - 8), bytes[8] == UInt8(ascii: "{") { return .safetensors }
        // llama2.c legacy: seven int32 (dim, hidden, layers, heads, kv heads, ±vocab, seq_len)
        // that describe a sensible model. Text and other binaries fail this almost surely.
        guard bytes.count >= 28 else { return .unknown }
        let h = (0..<7).map { Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        let limit = 1 << 24
        let (dim, hidden, layers, heads, kvHeads, vocab, seq) = (h[0], h[1], h[2], h[3], h[4], abs(h[5]), h[6])
        let sizes = [dim, hidden, layers, heads, kvHeads, vocab, seq]
        guard sizes.allSatisfy({ $0 > 0 && $0 < limit }), kvHeads <= heads, heads % kvHeads == 0, dim % heads == 0,
              layers <= 1024 else { return .unknown }
        return .llama2c
    }

    /// `tokenizer.bin` beside a llama2.c checkpoint, else the first `tok*.bin` (sorted by name).
    static func llama2cTokenizer(beside model: URL) -> URL? {
        let directory = model.deletingLastPathComponent()
        let fm = FileManager.default
        let standard = directory.appendingPathComponent("tokenizer.bin")
        if fm.fileExists(atPath: standard.path) { return standard }
        let names = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? []
        let candidates = names.filter { $0.hasPrefix("tok") && $0.hasSuffix(".bin") && $0 != model.lastPathComponent }.sorted()
        return candidates.first.map { directory.appendingPathComponent($0) }
    }
}
