import Foundation

/// Writes randomly initialized models as Hugging Face folders (`config.json` + `model.safetensors`,
/// the layout transformers' `save_pretrained` produces), for tests, benchmarks and training from
/// scratch.
public enum RandomModel {
    /// Standard deviation of linear weights: transformers' default `initializer_range`.
    public static let weightStd = 0.02

    /// Writes a model of shape `config` into `directory` (created if needed).
    ///
    /// Linear weights are N(0, 0.02²), norm weights 1. Qwen2's q/k/v biases are N(0, 0.02²) too,
    /// although transformers initializes them to 0: zero biases would leave the bias path of
    /// every test that uses a random model unexercised. Each tensor draws from its own stream
    /// seeded by `seed` and its name, so values do not depend on the order of writing.
    ///
    /// Tensors are generated and written one at a time, so memory stays at about one tensor
    /// (the largest is the embedding, `vocab × dim`) whatever the model's size. `config.json` is
    /// written last, so an interrupted run never leaves a folder that looks complete. The
    /// folder's q/k rows are in Hugging Face order by definition (random rows have no order), so
    /// it loads with `ropeStyle = .halfSplit` whatever `config.ropeStyle` says.
    /// - Parameter dtype: F32, F16 or BF16.
    /// - Throws: `.corrupt` for an invalid configuration, `.writeFailed` for I/O problems or a
    ///   quantized type.
    public static func write(config: LlamaConfig, dtype: FileDType, seed: UInt64, to directory: URL) throws {
        try config.validate(source: "random model configuration")
        guard dtype.quantized == nil else {
            throw ModelFileError.writeFailed(directory.path, "safetensors folders hold F32, F16 or BF16 weights, not \(dtype.rawValue)")
        }
        let hfConfig = try HuggingFaceConfig(config, dtype: dtype)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelFileError.writeFailed(directory.path, error.localizedDescription)
        }
        let specs = tensors(config: config, dtype: dtype)
        try SafetensorsWriter.write(to: directory.appendingPathComponent("model.safetensors"), tensors: specs,
                                    metadata: ["format": "pt"]) { tensor in
            values(for: tensor, seed: seed)
        }
        try AtomicFileWriter.write(try hfConfig.jsonData(), to: directory.appendingPathComponent("config.json"))
    }

    /// The tensors of a Hugging Face checkpoint of shape `config`, with their file names.
    public static func tensors(config: LlamaConfig, dtype: FileDType) -> [SafetensorsWriter.Tensor] {
        WeightAssembly.expectedShapes(config, names: .huggingFace).map {
            SafetensorsWriter.Tensor(name: $0.0, dtype: dtype, shape: $0.1)
        }
    }

    /// The values of one tensor: ones for norms, seeded normals for everything else.
    static func values(for tensor: SafetensorsWriter.Tensor, seed: UInt64) -> [Float] {
        let count = tensor.elementCount
        if tensor.name.hasSuffix("norm.weight") { return [Float](repeating: 1, count: count) }
        var generator = NormalGenerator(seed: NormalGenerator.seed(seed, name: tensor.name))
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            generator.fill(buffer, std: weightStd)
            initialized = count
        }
    }
}
