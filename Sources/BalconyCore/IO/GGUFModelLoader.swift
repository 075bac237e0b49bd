import Foundation

/// Builds `ModelWeights` from a GGUF file written by llama.cpp's `convert_hf_to_gguf.py` (or
/// anything that follows its conventions) for the `llama`, `mistral` and `qwen2` architectures.
///
/// Row order and RoPE: for `llama` (and `mistral`) the converter permutes the q/k rows of Hugging
/// Face checkpoints into interleaved order, and llama.cpp rotates interleaved pairs, so those files
/// load with `ropeStyle = .interleaved`. For `qwen2` the converter does not permute and llama.cpp
/// uses NEOX (half-split) rotation, so those load with `.halfSplit`. Rows are never rewritten.
public enum GGUFModelLoader {
    /// Values of `general.architecture` Balcony can run.
    public static let supportedArchitectures = ["llama", "mistral", "qwen2"]

    /// llama.cpp's name for LLaMA-3's per-frequency RoPE divisors.
    static let ropeFreqsTensor = "rope_freqs.weight"

    public static func load(url: URL) throws -> ModelWeights {
        try load(file: GGUFFile(url: url))
    }

    /// Loads and validates the weights. Matrices stay in the mapping in their own type (F32, F16,
    /// BF16 or any of `QuantizedType`).
    /// - Throws: `ModelFileError` — `.unsupportedArchitecture` listing the supported ones,
    ///   `.corrupt` naming a missing or malformed metadata key, `.unsupportedFeature` for RoPE
    ///   scaling Balcony cannot run, `.tensorSetMismatch` naming every missing, unexpected or
    ///   mis-shaped tensor, `.unknownTensorType` naming a tensor of a type Balcony cannot multiply.
    public static func load(file: GGUFFile) throws -> ModelWeights {
        let config = try config(of: file)
        let storage = WeightStorage(mapped: file.file)
        var tensors: [String: FoundTensor] = [:]
        for info in file.tensors {
            let dtype = fileDType(info.type)
            // Unsupported types have no known size; their bytes are never touched.
            let bytes = dtype == nil ? UnsafeRawBufferPointer(start: nil, count: 0) : try file.data(of: info)
            tensors[info.name] = FoundTensor(name: info.name, shape: info.shape, dtype: dtype, typeName: info.typeName,
                                             bytes: bytes, storage: storage)
        }
        return try WeightAssembly.assemble(config: config, names: .gguf, tensors: tensors,
                                           ignore: { $0 == ropeFreqsTensor && config.ropeFreqFactors != nil },
                                           source: file.path)
    }

    static func fileDType(_ type: GGMLType?) -> FileDType? {
        switch type {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case let t?: return QuantizedType(ggmlId: t.rawValue).map(WeightType.init)
        case nil: return nil
        }
    }

    /// The model configuration from the file's metadata; the vocabulary size comes from
    /// `token_embd.weight` and the tying of the output from whether `output.weight` exists
    /// (llama.cpp falls back to the embedding when it does not).
    public static func config(of file: GGUFFile) throws -> LlamaConfig {
        let path = file.path
        guard let arch = file["general.architecture"]?.stringValue else {
            throw ModelFileError.corrupt(path, "metadata key 'general.architecture' is missing")
        }
        guard supportedArchitectures.contains(arch) else {
            throw ModelFileError.unsupportedArchitecture(arch, supported: supportedArchitectures)
        }
        func int(_ key: String) throws -> Int? {
            guard let v = file["\(arch).\(key)"] else { return nil }
            guard let i = v.intValue else { throw ModelFileError.corrupt(path, "metadata key '\(arch).\(key)' is not an integer") }
            return i
        }
        func double(_ key: String) throws -> Double? {
            guard let v = file["\(arch).\(key)"] else { return nil }
            guard let d = v.doubleValue else { throw ModelFileError.corrupt(path, "metadata key '\(arch).\(key)' is not a number") }
            return d
        }
        func required<T>(_ key: String, _ get: (String) throws -> T?) throws -> T {
            guard let v = try get(key) else { throw ModelFileError.corrupt(path, "metadata key '\(arch).\(key)' is missing") }
            return v
        }

        let dim = try required("embedding_length", int)
        let heads = try required("attention.head_count", int)
        let kvHeads = try int("attention.head_count_kv") ?? heads
        let headDim = try int("attention.key_length") ?? (heads > 0 ? dim / heads : 0)
        if let valueLength = try int("attention.value_length"), valueLength != headDim {
            throw ModelFileError.unsupportedFeature(path, "value heads of size \(valueLength) different from key heads of size \(headDim)")
        }
        if let rotated = try int("rope.dimension_count"), rotated != headDim {
            throw ModelFileError.unsupportedFeature(path, "partial RoPE (\(rotated) of \(headDim) head dimensions rotated)")
        }
        try checkRopeScaling(file, arch: arch)

        guard let embedding = file.tensorsByName[TensorNames.gguf.embedding] else {
            throw ModelFileError.tensorSetMismatch(path, missing: [TensorNames.gguf.embedding], unexpected: [], wrongShape: [])
        }
        guard embedding.shape.count == 2 else {
            throw ModelFileError.tensorSetMismatch(path, missing: [], unexpected: [], wrongShape: ["\(embedding.name): found \(embedding.shape), expected [vocab, \(dim)]"])
        }
        let vocab = embedding.shape[0]
        if let declared = try int("vocab_size"), declared != vocab {
            throw ModelFileError.corrupt(path, "\(arch).vocab_size is \(declared) but token_embd.weight has \(vocab) rows")
        }

        var factors: [Float]?
        if let info = file.tensorsByName[ropeFreqsTensor] {
            guard info.shape == [headDim / 2], let dtype = fileDType(info.type) else {
                throw ModelFileError.corrupt(path, "\(ropeFreqsTensor) has shape \(info.shape) and type \(info.typeName); expected [\(headDim / 2)] of F32")
            }
            factors = try TensorConversion.floats(file.data(of: info), dtype: dtype, count: headDim / 2, source: path)
        }

        let config = LlamaConfig(
            architecture: arch, dim: dim, hiddenDim: try required("feed_forward_length", int),
            layerCount: try required("block_count", int), headCount: heads, kvHeadCount: kvHeads, headDim: headDim,
            vocabSize: vocab, contextLength: try required("context_length", int),
            normEps: Float(try required("attention.layer_norm_rms_epsilon", double)),
            // llama.cpp's default when the key is absent.
            ropeTheta: Float(try double("rope.freq_base") ?? 10000),
            ropeScaling: nil, ropeStyle: arch == "qwen2" ? .halfSplit : .interleaved,
            tiedEmbeddings: file.tensorsByName[TensorNames.gguf.output] == nil,
            attentionBias: arch == "qwen2", ropeFreqFactors: factors)
        try config.validate(source: path)
        return config
    }

    /// Accepts no scaling (or linear scaling by 1); anything else changes RoPE in ways Balcony
    /// does not implement, so it is refused rather than run wrongly.
    private static func checkRopeScaling(_ file: GGUFFile, arch: String) throws {
        let type = file["\(arch).rope.scaling.type"]?.stringValue ?? "none"
        let factor = file["\(arch).rope.scaling.factor"]?.doubleValue
            ?? file["\(arch).rope.scale_linear"]?.doubleValue ?? 1
        switch type {
        case "none":
            break
        case "linear" where factor == 1:
            break
        default:
            throw ModelFileError.unsupportedFeature(file.path, "rope scaling type '\(type)' with factor \(factor) (supported: none, and LLaMA-3 frequency factors in rope_freqs.weight)")
        }
        if type == "none", factor != 1, file["\(arch).rope.scale_linear"] != nil {
            throw ModelFileError.unsupportedFeature(file.path, "linear rope scaling by \(factor)")
        }
    }
}
