import Foundation

/// How RoPE pairs the dimensions of a head. llama2.c and GGUF rotate interleaved pairs
/// `(x[2i], x[2i+1])`; Hugging Face rotates half-split pairs `(x[i], x[i + d/2])` and orders the
/// q/k projection rows for that. Balcony keeps each file's own row order and rotates accordingly,
/// so mapped weights never need rewriting (see docs/rope.md).
public enum RopeStyle: String, Codable, Sendable {
    case interleaved
    case halfSplit = "half_split"
}

/// LLaMA-3 frequency scaling (`rope_scaling.rope_type = "llama3"`).
public struct RopeScaling: Codable, Sendable, Equatable {
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalMaxPositionEmbeddings: Int

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositionEmbeddings: Int) {
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }
}

/// The shape and numerics of a LLaMA-family decoder (LLaMA 1/2/3, Mistral, Qwen2).
public struct LlamaConfig: Codable, Sendable, Equatable {
    /// "llama", "mistral" or "qwen2".
    public var architecture: String
    public var dim: Int
    public var hiddenDim: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var normEps: Float
    public var ropeTheta: Float
    public var ropeScaling: RopeScaling?
    public var ropeStyle: RopeStyle
    public var tiedEmbeddings: Bool
    /// Qwen2 has biases on the q, k and v projections.
    public var attentionBias: Bool
    /// Per-frequency divisors of the RoPE inverse frequencies (`headDim / 2` values), as GGUF
    /// files of LLaMA-3 models carry them in a `rope_freqs.weight` tensor instead of the
    /// `rope_scaling` parameters (llama.cpp: `theta_i / freq_factors[i]`). Applied after
    /// `ropeScaling` by `ropeInverseFrequencies()`.
    public var ropeFreqFactors: [Float]?

    public init(
        architecture: String = "llama", dim: Int, hiddenDim: Int, layerCount: Int, headCount: Int,
        kvHeadCount: Int? = nil, headDim: Int? = nil, vocabSize: Int, contextLength: Int,
        normEps: Float = 1e-5, ropeTheta: Float = 10000, ropeScaling: RopeScaling? = nil,
        ropeStyle: RopeStyle = .halfSplit, tiedEmbeddings: Bool = false, attentionBias: Bool = false,
        ropeFreqFactors: [Float]? = nil
    ) {
        self.architecture = architecture
        self.dim = dim
        self.hiddenDim = hiddenDim
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount ?? headCount
        self.headDim = headDim ?? (dim / max(headCount, 1))
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.normEps = normEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.ropeStyle = ropeStyle
        self.tiedEmbeddings = tiedEmbeddings
        self.attentionBias = attentionBias
        self.ropeFreqFactors = ropeFreqFactors
    }

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// Parameters of one decoder layer.
    public var parametersPerLayer: Int {
        let attn = dim * qDim + 2 * dim * kvDim + qDim * dim + (attentionBias ? qDim + 2 * kvDim : 0)
        return attn + 3 * dim * hiddenDim + 2 * dim
    }

    /// Total parameters, counting a tied embedding once.
    public var parameterCount: Int {
        vocabSize * dim * (tiedEmbeddings ? 1 : 2) + layerCount * parametersPerLayer + dim
    }

    /// The largest value each size may take. Generous multiples of the largest released LLaMA-family
    /// models (dim 16384, FFN 53248, 126 layers, 128 heads, head size 256, vocabularies of 256K,
    /// contexts of 1M), small enough that no product of them overflows `Int`. Files come from
    /// anywhere, and the release build does not check arithmetic, so every size is bounded here
    /// and every product is computed with overflow checks before anything is allocated from it.
    public static let limits: [(field: String, max: Int)] = [
        ("dim", 1 << 17), ("hidden_dim", 1 << 20), ("layers", 4096), ("heads", 4096), ("kv_heads", 4096),
        ("head_dim", 1 << 14), ("vocab_size", 1 << 24), ("context_length", 1 << 24),
    ]

    /// Checks that the numbers describe a model Balcony can run; throws a message naming the bad field.
    public func validate(source: String) throws {
        func bad(_ why: String) -> ModelFileError { .corrupt(source, why) }
        guard dim > 0, hiddenDim > 0, layerCount > 0, headCount > 0, kvHeadCount > 0, vocabSize > 0, contextLength > 0 else {
            throw bad("configuration has a non-positive size (dim \(dim), hidden \(hiddenDim), layers \(layerCount), heads \(headCount), kv heads \(kvHeadCount), vocab \(vocabSize), context \(contextLength))")
        }
        let values = [dim, hiddenDim, layerCount, headCount, kvHeadCount, headDim, vocabSize, contextLength]
        for ((field, limit), value) in zip(Self.limits, values) where value > limit {
            throw bad("\(field) \(value) is beyond the largest Balcony accepts (\(limit)); the file's header or config is damaged or not a LLaMA-family model")
        }
        guard headCount % kvHeadCount == 0 else {
            throw bad("\(headCount) attention heads are not a multiple of \(kvHeadCount) key/value heads")
        }
        guard headDim > 0, headDim % 2 == 0 else { throw bad("head size \(headDim) must be even and positive") }
        guard normEps > 0, normEps.isFinite, ropeTheta > 0, ropeTheta.isFinite else { throw bad("norm eps and rope theta must be positive and finite") }
        // The bounds above keep these far from Int.max, but the products are what buffers are
        // sized from, so check them as products.
        guard let q = CheckedSize.product(headCount, headDim), let kv = CheckedSize.product(kvHeadCount, headDim) else {
            throw bad("heads x head size overflows (\(headCount) x \(headDim), \(kvHeadCount) x \(headDim))")
        }
        guard q <= 1 << 20 else {
            throw bad("attention width \(headCount) heads x \(headDim) = \(q) is beyond the largest Balcony accepts (\(1 << 20))")
        }
        // K and V of every layer at the full context, in float32: what a full-context cache holds.
        guard CheckedSize.product(2, layerCount, contextLength, kv, 4) != nil else {
            throw bad("a key/value cache for context_length \(contextLength) (\(layerCount) layers x \(kv) values) overflows")
        }
        guard checkedParameterCount() != nil else {
            throw bad("the parameter count overflows (dim \(dim), hidden \(hiddenDim), layers \(layerCount), vocab \(vocabSize))")
        }
        if let f = ropeFreqFactors {
            guard f.count == headDim / 2 else { throw bad("\(f.count) rope frequency factors for head size \(headDim) (needs \(headDim / 2))") }
            guard f.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw bad("rope frequency factors must be positive and finite") }
        }
    }

    /// `parameterCount` with every product and sum checked; nil on overflow.
    func checkedParameterCount() -> Int? {
        guard let q = CheckedSize.product(headCount, headDim), let kv = CheckedSize.product(kvHeadCount, headDim),
              let attn = CheckedSize.sum(CheckedSize.product(2, dim, q) ?? -1, CheckedSize.product(2, dim, kv) ?? -1,
                                         attentionBias ? (CheckedSize.sum(q, CheckedSize.product(2, kv) ?? -1) ?? -1) : 0),
              let perLayer = CheckedSize.sum(attn, CheckedSize.product(3, dim, hiddenDim) ?? -1, CheckedSize.product(2, dim) ?? -1),
              let layers = CheckedSize.product(layerCount, perLayer),
              let embeddings = CheckedSize.product(vocabSize, dim, tiedEmbeddings ? 1 : 2)
        else { return nil }
        return CheckedSize.sum(embeddings, layers, dim)
    }

    /// RoPE inverse frequencies for one head, with LLaMA-3 scaling when configured
    /// (the same rule as transformers' `_compute_llama3_parameters`), each divided by
    /// `ropeFreqFactors[i]` when a GGUF file supplied them.
    public func ropeInverseFrequencies() -> [Float] {
        let half = headDim / 2
        var inv = (0..<half).map { i in 1.0 / pow(Double(ropeTheta), Double(2 * i) / Double(headDim)) }
        if let s = ropeScaling {
            let lowWavelen = Double(s.originalMaxPositionEmbeddings) / s.lowFreqFactor
            let highWavelen = Double(s.originalMaxPositionEmbeddings) / s.highFreqFactor
            inv = inv.map { f in
                let wavelen = 2 * Double.pi / f
                if wavelen > lowWavelen { return f / s.factor }
                if wavelen < highWavelen { return f }
                let smooth = (Double(s.originalMaxPositionEmbeddings) / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor)
                return (1 - smooth) * f / s.factor + smooth * f
            }
        }
        if let factors = ropeFreqFactors, factors.count == inv.count {
            inv = zip(inv, factors).map { $0 / Double($1) }
        }
        return inv.map { Float($0) }
    }
}
