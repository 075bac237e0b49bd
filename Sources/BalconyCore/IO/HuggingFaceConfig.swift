import Foundation

/// A Hugging Face architecture Balcony can run, with the defaults its transformers config class
/// uses for keys a config.json may omit.
public struct HuggingFaceArchitecture: Sendable, Equatable {
    /// `model_type` in config.json, also `LlamaConfig.architecture`.
    public let modelType: String
    /// The `architectures` entry transformers writes.
    public let className: String
    /// Qwen2 always has q/k/v biases (and no o_proj bias); LLaMA and Mistral have none by default.
    public let qkvBias: Bool
    public let defaultContextLength: Int
    /// Mistral's config class defaults to a 4096-token sliding window when the key is absent.
    public let defaultSlidingWindow: Int?

    /// The registry: `model_type` → architecture. Transformers' defaults are from
    /// `LlamaConfig`, `MistralConfig` and `Qwen2Config` (all: rms_norm_eps 1e-6, rope_theta 10000,
    /// untied embeddings).
    public static let supported: [HuggingFaceArchitecture] = [
        HuggingFaceArchitecture(modelType: "llama", className: "LlamaForCausalLM", qkvBias: false,
                                defaultContextLength: 2048, defaultSlidingWindow: nil),
        HuggingFaceArchitecture(modelType: "mistral", className: "MistralForCausalLM", qkvBias: false,
                                defaultContextLength: 4096 * 32, defaultSlidingWindow: 4096),
        HuggingFaceArchitecture(modelType: "qwen2", className: "Qwen2ForCausalLM", qkvBias: true,
                                defaultContextLength: 32768, defaultSlidingWindow: nil),
    ]

    public static func named(_ modelType: String) -> HuggingFaceArchitecture? {
        supported.first { $0.modelType == modelType }
    }

    /// Finds the architecture from `model_type`, or from `architectures` when that is absent.
    /// - Throws: `ModelFileError.unsupportedArchitecture` listing the supported model types.
    public static func resolve(modelType: String?, architectures: [String]?) throws -> HuggingFaceArchitecture {
        if let modelType {
            if let a = named(modelType) { return a }
            throw ModelFileError.unsupportedArchitecture(modelType, supported: supported.map(\.modelType))
        }
        for name in architectures ?? [] {
            if let a = supported.first(where: { $0.className == name }) { return a }
        }
        let what = architectures?.joined(separator: ", ") ?? "(config.json names no model_type or architectures)"
        throw ModelFileError.unsupportedArchitecture(what, supported: supported.map(\.modelType))
    }
}

/// RoPE settings as config.json states them: transformers 4.x's `rope_scaling` (with `type` or
/// `rope_type`) beside a top-level `rope_theta`, or transformers 5's `rope_parameters`, which holds
/// `rope_theta` too.
public struct HuggingFaceRopeParameters: Codable, Sendable, Equatable {
    public var ropeType: String?
    public var ropeTheta: Double?
    public var factor: Double?
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    public var originalMaxPositionEmbeddings: Int?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, ropeTheta = "rope_theta", factor
        case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    }

    public init(ropeType: String?, ropeTheta: Double? = nil, factor: Double? = nil, lowFreqFactor: Double? = nil,
                highFreqFactor: Double? = nil, originalMaxPositionEmbeddings: Int? = nil) {
        self.ropeType = ropeType
        self.ropeTheta = ropeTheta
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Older configs say "type"; newer ones "rope_type".
        ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        factor = try c.decodeIfPresent(Double.self, forKey: .factor)
        lowFreqFactor = try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor)
        highFreqFactor = try c.decodeIfPresent(Double.self, forKey: .highFreqFactor)
        originalMaxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(ropeType, forKey: .ropeType)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(factor, forKey: .factor)
        try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
        try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
        try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
    }
}

/// A Hugging Face `config.json` for `LlamaForCausalLM`, `MistralForCausalLM` or `Qwen2ForCausalLM`,
/// with Swift names. Keys transformers has renamed are accepted in both spellings (`torch_dtype` /
/// `dtype`, `rope_scaling` / `rope_parameters`); unknown keys are ignored, as transformers does.
public struct HuggingFaceConfig: Codable, Sendable, Equatable {
    public var architectures: [String]?
    public var modelType: String?
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int?
    public var rmsNormEps: Double?
    public var ropeTheta: Double?
    /// transformers 4.x spelling.
    public var ropeScaling: HuggingFaceRopeParameters?
    /// transformers 5 spelling.
    public var ropeParameters: HuggingFaceRopeParameters?
    public var tieWordEmbeddings: Bool?
    public var attentionBias: Bool?
    public var mlpBias: Bool?
    public var hiddenAct: String?
    public var bosTokenId: Int?
    /// `eos_token_id` may be one id or a list (LLaMA-3 instruct models list several).
    public var eosTokenIds: [Int]
    /// "float32", "float16" or "bfloat16" (`dtype`, formerly `torch_dtype`).
    public var dtype: String?
    public var slidingWindow: Int?
    public var useSlidingWindow: Bool?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", hiddenAct = "hidden_act"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", dtype, torchDtype = "torch_dtype"
        case slidingWindow = "sliding_window", useSlidingWindow = "use_sliding_window"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings)
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        ropeScaling = try c.decodeIfPresent(HuggingFaceRopeParameters.self, forKey: .ropeScaling)
        ropeParameters = try c.decodeIfPresent(HuggingFaceRopeParameters.self, forKey: .ropeParameters)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias)
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eosTokenIds = [one]
        } else {
            eosTokenIds = try c.decodeIfPresent([Int].self, forKey: .eosTokenId) ?? []
        }
        dtype = try c.decodeIfPresent(String.self, forKey: .dtype) ?? c.decodeIfPresent(String.self, forKey: .torchDtype)
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow)
        // An absent key means the config class's default; an explicit null means no window.
        if c.contains(.slidingWindow) {
            slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        } else {
            slidingWindow = modelType.flatMap { HuggingFaceArchitecture.named($0)?.defaultSlidingWindow }
        }
    }

    /// Writes the keys transformers 5 writes, plus the 4.x spellings of the RoPE settings
    /// (`rope_theta`, `rope_scaling`) so that older transformers read the same model.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(architectures, forKey: .architectures)
        try c.encodeIfPresent(modelType, forKey: .modelType)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encodeIfPresent(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encodeIfPresent(headDim, forKey: .headDim)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encodeIfPresent(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encodeIfPresent(rmsNormEps, forKey: .rmsNormEps)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(ropeScaling, forKey: .ropeScaling)
        try c.encodeIfPresent(ropeParameters, forKey: .ropeParameters)
        try c.encodeIfPresent(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encodeIfPresent(attentionBias, forKey: .attentionBias)
        try c.encodeIfPresent(mlpBias, forKey: .mlpBias)
        try c.encodeIfPresent(hiddenAct, forKey: .hiddenAct)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 {
            try c.encode(eosTokenIds[0], forKey: .eosTokenId)
        } else if !eosTokenIds.isEmpty {
            try c.encode(eosTokenIds, forKey: .eosTokenId)
        }
        try c.encodeIfPresent(dtype, forKey: .dtype)
        if modelType == "mistral" || modelType == "qwen2" {
            // Explicit null: an absent key would mean Mistral's default 4096-token window.
            if let slidingWindow { try c.encode(slidingWindow, forKey: .slidingWindow) } else { try c.encodeNil(forKey: .slidingWindow) }
        }
        try c.encodeIfPresent(useSlidingWindow, forKey: .useSlidingWindow)
    }

    /// Reads and decodes `config.json`.
    /// - Throws: `ModelFileError.cannotOpen`, or `.corrupt` naming the key that is wrong.
    public static func load(url: URL) throws -> HuggingFaceConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelFileError.cannotOpen(url.path, error.localizedDescription)
        }
        do {
            return try JSONDecoder().decode(HuggingFaceConfig.self, from: data)
        } catch let error as DecodingError {
            throw ModelFileError.corrupt(url.path, "config.json: \(SafetensorsFile.describe(error))")
        }
    }

    /// The RoPE settings in force: transformers 5's `rope_parameters` if present, else the 4.x keys.
    public var effectiveRope: (theta: Double, parameters: HuggingFaceRopeParameters?) {
        let theta = ropeParameters?.ropeTheta ?? ropeTheta ?? 10000
        return (theta, ropeParameters ?? ropeScaling)
    }

    /// The Balcony configuration (`ropeStyle = .halfSplit`, Hugging Face's row order).
    /// - Throws: `.unsupportedArchitecture` listing the supported types, `.unsupportedFeature` for
    ///   settings Balcony cannot run exactly (YaRN or other RoPE scaling, biases beyond Qwen2's,
    ///   activations other than SiLU), `.corrupt` for inconsistent numbers.
    public func llamaConfig(source: String) throws -> LlamaConfig {
        let arch = try HuggingFaceArchitecture.resolve(modelType: modelType, architectures: architectures)
        if let act = hiddenAct, act != "silu" {
            throw ModelFileError.unsupportedFeature(source, "hidden_act '\(act)' (only silu, as in LLaMA)")
        }
        if !arch.qkvBias, attentionBias == true {
            // LLaMA's attention_bias puts a bias on o_proj too, which LayerWeights has no place for.
            throw ModelFileError.unsupportedFeature(source, "attention_bias = true for \(arch.modelType)")
        }
        if mlpBias == true { throw ModelFileError.unsupportedFeature(source, "mlp_bias = true") }

        let rope = effectiveRope
        var scaling: RopeScaling?
        switch rope.parameters?.ropeType {
        case nil, "default":
            scaling = nil
        case "llama3":
            guard let p = rope.parameters, let factor = p.factor, let low = p.lowFreqFactor, let high = p.highFreqFactor,
                  let original = p.originalMaxPositionEmbeddings else {
                throw ModelFileError.corrupt(source, "llama3 rope scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            guard factor > 0, low > 0, high > low, original > 0 else {
                throw ModelFileError.corrupt(source, "llama3 rope scaling has factor \(factor), low_freq_factor \(low), high_freq_factor \(high), original_max_position_embeddings \(original)")
            }
            scaling = RopeScaling(factor: factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: original)
        case let other?:
            throw ModelFileError.unsupportedFeature(source, "rope scaling type '\(other)' (supported: default, llama3)")
        }

        var context = maxPositionEmbeddings ?? arch.defaultContextLength
        // A sliding window only changes attention once a sequence is longer than the window;
        // capping the context there keeps every result exact without implementing the window.
        let windowApplies = arch.modelType == "qwen2" ? (useSlidingWindow ?? false) : true
        if windowApplies, let window = slidingWindow, window > 0 { context = min(context, window) }

        let config = LlamaConfig(
            architecture: arch.modelType, dim: hiddenSize, hiddenDim: intermediateSize, layerCount: numHiddenLayers,
            headCount: numAttentionHeads, kvHeadCount: numKeyValueHeads, headDim: headDim, vocabSize: vocabSize,
            contextLength: context, normEps: Float(rmsNormEps ?? 1e-6), ropeTheta: Float(rope.theta), ropeScaling: scaling,
            ropeStyle: .halfSplit, tiedEmbeddings: tieWordEmbeddings ?? false, attentionBias: arch.qkvBias)
        try config.validate(source: source)
        return config
    }

    /// The config.json transformers would write for `config` with weights stored as `dtype`.
    /// - Throws: `.unsupportedArchitecture` for an architecture outside the registry.
    public init(_ config: LlamaConfig, dtype: FileDType) throws {
        guard let arch = HuggingFaceArchitecture.named(config.architecture) else {
            throw ModelFileError.unsupportedArchitecture(config.architecture, supported: HuggingFaceArchitecture.supported.map(\.modelType))
        }
        // Float -> Double through the shortest decimal, so 1e-5 is written as 1e-05 and not as
        // 9.99999974738e-06.
        func wide(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
        architectures = [arch.className]
        modelType = arch.modelType
        hiddenSize = config.dim
        intermediateSize = config.hiddenDim
        numHiddenLayers = config.layerCount
        numAttentionHeads = config.headCount
        numKeyValueHeads = config.kvHeadCount
        // Qwen2Config has no head_dim (transformers derives it), so it is written only when it
        // differs from hidden_size / num_attention_heads.
        headDim = arch.modelType == "qwen2" && config.headDim == config.dim / config.headCount ? nil : config.headDim
        vocabSize = config.vocabSize
        maxPositionEmbeddings = config.contextLength
        rmsNormEps = wide(config.normEps)
        ropeTheta = wide(config.ropeTheta)
        if let s = config.ropeScaling {
            ropeScaling = HuggingFaceRopeParameters(
                ropeType: "llama3", factor: s.factor, lowFreqFactor: s.lowFreqFactor, highFreqFactor: s.highFreqFactor,
                originalMaxPositionEmbeddings: s.originalMaxPositionEmbeddings)
            ropeParameters = ropeScaling
            ropeParameters?.ropeTheta = ropeTheta
        } else {
            ropeScaling = nil
            ropeParameters = HuggingFaceRopeParameters(ropeType: "default", ropeTheta: ropeTheta)
        }
        tieWordEmbeddings = config.tiedEmbeddings
        attentionBias = arch.qkvBias ? nil : false
        mlpBias = arch.qkvBias ? nil : false
        hiddenAct = "silu"
        bosTokenId = nil
        eosTokenIds = []
        switch dtype {
        case .f16: self.dtype = "float16"
        case .bf16: self.dtype = "bfloat16"
        default: self.dtype = "float32"
        }
        slidingWindow = nil
        useSlidingWindow = arch.modelType == "qwen2" ? false : nil
    }

    /// Pretty-printed JSON with sorted keys, as transformers writes config.json.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
