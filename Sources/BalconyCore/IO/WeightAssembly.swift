import Foundation

/// One tensor as a file's directory describes it, before it becomes a weight.
struct FoundTensor {
    let name: String
    /// PyTorch order.
    let shape: [Int]
    /// nil when Balcony cannot load the file's element type.
    let dtype: FileDType?
    /// The file's name for the element type, for error messages.
    let typeName: String
    let bytes: UnsafeRawBufferPointer
    let storage: WeightStorage
}

/// The pieces of one decoder layer, in the order they are listed in errors.
enum LayerTensor: CaseIterable {
    case attentionNorm, wq, wk, wv, wo, bq, bk, bv, ffnNorm, gate, up, down
}

/// A file format's names for the model's tensors — the one place where checkpoint keys are mapped.
struct TensorNames {
    let embedding: String
    let finalNorm: String
    let output: String
    let layer: @Sendable (Int, LayerTensor) -> String

    /// Hugging Face `LlamaForCausalLM` / `MistralForCausalLM` / `Qwen2ForCausalLM` keys.
    static let huggingFace = TensorNames(
        embedding: "model.embed_tokens.weight", finalNorm: "model.norm.weight", output: "lm_head.weight",
        layer: { i, t in
            let p = "model.layers.\(i)."
            switch t {
            case .attentionNorm: return p + "input_layernorm.weight"
            case .wq: return p + "self_attn.q_proj.weight"
            case .wk: return p + "self_attn.k_proj.weight"
            case .wv: return p + "self_attn.v_proj.weight"
            case .wo: return p + "self_attn.o_proj.weight"
            case .bq: return p + "self_attn.q_proj.bias"
            case .bk: return p + "self_attn.k_proj.bias"
            case .bv: return p + "self_attn.v_proj.bias"
            case .ffnNorm: return p + "post_attention_layernorm.weight"
            case .gate: return p + "mlp.gate_proj.weight"
            case .up: return p + "mlp.up_proj.weight"
            case .down: return p + "mlp.down_proj.weight"
            }
        })

    /// llama.cpp's GGUF keys (`LLM_TENSOR_NAMES` in llama-arch.cpp).
    static let gguf = TensorNames(
        embedding: "token_embd.weight", finalNorm: "output_norm.weight", output: "output.weight",
        layer: { i, t in
            let p = "blk.\(i)."
            switch t {
            case .attentionNorm: return p + "attn_norm.weight"
            case .wq: return p + "attn_q.weight"
            case .wk: return p + "attn_k.weight"
            case .wv: return p + "attn_v.weight"
            case .wo: return p + "attn_output.weight"
            case .bq: return p + "attn_q.bias"
            case .bk: return p + "attn_k.bias"
            case .bv: return p + "attn_v.bias"
            case .ffnNorm: return p + "ffn_norm.weight"
            case .gate: return p + "ffn_gate.weight"
            case .up: return p + "ffn_up.weight"
            case .down: return p + "ffn_down.weight"
            }
        })
}

/// Turns a file's tensors into `ModelWeights`, checking the whole set against the configuration
/// first so that one error names every missing, unexpected and mis-shaped tensor.
enum WeightAssembly {
    /// The tensors `config` needs, with their PyTorch shapes, in a stable order.
    static func expectedShapes(_ c: LlamaConfig, names: TensorNames) -> [(String, [Int])] {
        var out: [(String, [Int])] = [(names.embedding, [c.vocabSize, c.dim])]
        for i in 0..<c.layerCount {
            for t in LayerTensor.allCases {
                let shape: [Int]
                switch t {
                case .attentionNorm, .ffnNorm: shape = [c.dim]
                case .wq: shape = [c.qDim, c.dim]
                case .wk, .wv: shape = [c.kvDim, c.dim]
                case .wo: shape = [c.dim, c.qDim]
                case .bq: guard c.attentionBias else { continue }; shape = [c.qDim]
                case .bk, .bv: guard c.attentionBias else { continue }; shape = [c.kvDim]
                case .gate, .up: shape = [c.hiddenDim, c.dim]
                case .down: shape = [c.dim, c.hiddenDim]
                }
                out.append((names.layer(i, t), shape))
            }
        }
        out.append((names.finalNorm, [c.dim]))
        if !c.tiedEmbeddings { out.append((names.output, [c.vocabSize, c.dim])) }
        return out
    }

    /// Checks `tensors` against `config` and builds the weights. Names for which `ignore` is true
    /// are allowed to be present without being used.
    /// - Throws: `.tensorSetMismatch` listing every problem with the set of tensors, then
    ///   `.unknownTensorType` naming a tensor of a type Balcony cannot load.
    static func assemble(config: LlamaConfig, names: TensorNames, tensors: [String: FoundTensor],
                         ignore: (String) -> Bool = { _ in false }, source: String) throws -> ModelWeights {
        let expected = expectedShapes(config, names: names)
        let expectedNames = Set(expected.map(\.0))
        var missing: [String] = []
        var wrongShape: [String] = []
        for (name, shape) in expected {
            guard let t = tensors[name] else { missing.append(name); continue }
            if t.shape != shape { wrongShape.append("\(name): found \(t.shape), expected \(shape)") }
        }
        let unexpected = tensors.keys.filter { !expectedNames.contains($0) && !ignore($0) }.sorted(by: naturalOrder)
        guard missing.isEmpty, unexpected.isEmpty, wrongShape.isEmpty else {
            throw ModelFileError.tensorSetMismatch(source, missing: missing, unexpected: unexpected, wrongShape: wrongShape)
        }
        for (name, _) in expected {
            if let t = tensors[name], t.dtype == nil {
                throw ModelFileError.unknownTensorType(source, "\(t.typeName) (tensor '\(name)')")
            }
        }

        // Every name below was checked above, so these lookups cannot fail; they throw anyway
        // rather than trap.
        func found(_ name: String) throws -> (FoundTensor, FileDType) {
            guard let t = tensors[name], let d = t.dtype else { throw ModelFileError.missingTensor(source, name) }
            return (t, d)
        }
        func matrix(_ name: String) throws -> WeightMatrix {
            let (t, d) = try found(name)
            return try WeightMatrix.fromFile(bytes: t.bytes, dtype: d, rows: t.shape[0], cols: t.shape[1],
                                             storage: t.storage, source: source, name: name)
        }
        func vector(_ name: String) throws -> [Float] {
            let (t, d) = try found(name)
            return try TensorConversion.floats(t.bytes, dtype: d, count: t.shape.reduce(1, *), source: source)
        }
        func bias(_ i: Int, _ t: LayerTensor) throws -> [Float]? {
            config.attentionBias ? try vector(names.layer(i, t)) : nil
        }

        let embedding = try matrix(names.embedding)
        var layers: [LayerWeights] = []
        layers.reserveCapacity(config.layerCount)
        for i in 0..<config.layerCount {
            layers.append(LayerWeights(
                attentionNorm: try vector(names.layer(i, .attentionNorm)),
                wq: try matrix(names.layer(i, .wq)), wk: try matrix(names.layer(i, .wk)),
                wv: try matrix(names.layer(i, .wv)), wo: try matrix(names.layer(i, .wo)),
                bq: try bias(i, .bq), bk: try bias(i, .bk), bv: try bias(i, .bv),
                ffnNorm: try vector(names.layer(i, .ffnNorm)),
                gate: try matrix(names.layer(i, .gate)), up: try matrix(names.layer(i, .up)),
                down: try matrix(names.layer(i, .down))))
        }
        let output = config.tiedEmbeddings ? embedding : try matrix(names.output)
        let weights = ModelWeights(config: config, tokenEmbedding: embedding, layers: layers,
                                   finalNorm: try vector(names.finalNorm), output: output)
        try weights.validate(source: source)
        return weights
    }

    /// Orders "blk.2.x" before "blk.10.x" so error lists read naturally.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: .numeric) == .orderedAscending
    }
}
