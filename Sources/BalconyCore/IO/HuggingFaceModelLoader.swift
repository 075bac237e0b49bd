import Foundation

/// Loads a Hugging Face model folder: `config.json` plus `model.safetensors`, or the shards listed
/// in `model.safetensors.index.json`. Matrices are used in place in the mapped files, in their own
/// type (F32, F16 or BF16). q/k rows keep Hugging Face's order, so `ropeStyle` is `.halfSplit`.
public enum HuggingFaceModelLoader {
    /// Loads and validates the model in `directory`.
    /// - Throws: `ModelFileError` — `.unsupportedArchitecture` / `.unsupportedFeature` for configs
    ///   Balcony cannot run, `.tensorSetMismatch` naming every missing, unexpected or mis-shaped
    ///   tensor, `.unknownTensorType` for element types other than F32/F16/BF16, and the
    ///   safetensors reader's errors for damaged files.
    public static func load(directory: URL) throws -> ModelWeights {
        let source = directory.path
        let config = try HuggingFaceConfig.load(url: directory.appendingPathComponent("config.json"))
            .llamaConfig(source: source + "/config.json")
        let files = try openSafetensors(directory: directory)
        var tensors: [String: FoundTensor] = [:]
        for file in files {
            let storage = WeightStorage(mapped: file.file)
            for t in file.tensors {
                guard tensors[t.name] == nil else {
                    throw ModelFileError.corrupt(source, "tensor '\(t.name)' appears in more than one shard")
                }
                tensors[t.name] = FoundTensor(name: t.name, shape: t.shape, dtype: t.dtype.fileDType, typeName: t.dtype.rawValue,
                                              bytes: file.data(of: t), storage: storage)
            }
        }
        return try WeightAssembly.assemble(config: config, names: .huggingFace, tensors: tensors,
                                           ignore: { isIgnorable($0, config: config) }, source: source)
    }

    /// Tensors that may be present without being weights: RoPE tables some checkpoints saved as
    /// buffers (recomputed from the config), and `lm_head.weight` in a tied model, which
    /// transformers also ignores in favour of the embedding.
    static func isIgnorable(_ name: String, config: LlamaConfig) -> Bool {
        if name.hasSuffix("rotary_emb.inv_freq") { return true }
        return config.tiedEmbeddings && name == TensorNames.huggingFace.output
    }

    /// The safetensors files of the model: one `model.safetensors` or every shard of the index.
    static func openSafetensors(directory: URL) throws -> [SafetensorsFile] {
        let fm = FileManager.default
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: index.path) {
            let weightMap = try weightMap(index: index)
            var files: [String: SafetensorsFile] = [:]
            for name in Set(weightMap.values).sorted() {
                files[name] = try SafetensorsFile(url: directory.appendingPathComponent(name))
            }
            for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) where files[shard]?[tensor] == nil {
                throw ModelFileError.corrupt(index.path, "lists tensor '\(tensor)' in \(shard), which does not hold it")
            }
            return files.keys.sorted().compactMap { files[$0] }
        }
        let single = directory.appendingPathComponent("model.safetensors")
        if fm.fileExists(atPath: single.path) { return [try SafetensorsFile(url: single)] }
        if fm.fileExists(atPath: directory.appendingPathComponent("pytorch_model.bin").path) {
            throw ModelFileError.unsupportedFeature(directory.path, "PyTorch pickle weights (pytorch_model.bin); save the model with safetensors (save_pretrained(..., safe_serialization=True))")
        }
        throw ModelFileError.cannotOpen(single.path, "the folder has neither model.safetensors nor model.safetensors.index.json")
    }

    private struct Index: Decodable {
        var weightMap: [String: String]
        enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
    }

    /// The `weight_map` (tensor → shard file name) of `model.safetensors.index.json`.
    static func weightMap(index url: URL) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelFileError.cannotOpen(url.path, error.localizedDescription)
        }
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch let error as DecodingError {
            throw ModelFileError.corrupt(url.path, SafetensorsFile.describe(error))
        }
        let names = Set(index.weightMap.values).sorted()
        for name in names where name.isEmpty || name.contains("/") || name == ".." {
            // Shards live beside the index; anything else is a damaged or hostile index.
            throw ModelFileError.corrupt(url.path, "shard name '\(name)' is not a file name in the model folder")
        }
        guard !names.isEmpty else { throw ModelFileError.corrupt(url.path, "weight_map is empty") }
        return index.weightMap
    }
}
