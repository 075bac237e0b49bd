import Foundation

/// Errors of running a model on given tokens.
public enum ModelError: LocalizedError, Equatable {
    case tokenOutOfRange(Int, vocabularySize: Int)
    case contextOverflow(needed: Int, capacity: Int)
    case emptyInput

    public var errorDescription: String? {
        switch self {
        case let .tokenOutOfRange(t, v):
            return "token id \(t) is outside the vocabulary (0..<\(v)); the tokenizer does not belong to this model"
        case let .contextOverflow(needed, capacity):
            return "the sequence needs \(needed) positions but the context holds \(capacity); shorten the prompt or lower --max-tokens"
        case .emptyInput:
            return "no tokens to run"
        }
    }
}

/// A LLaMA-family decoder (LLaMA 1/2/3, Mistral, Qwen2) over immutable weights.
/// Port of the reference forward passes of llama2.c `run.c` and transformers' `LlamaModel`.
/// The model holds no per-sequence state: that lives in `KVCache`, one per sequence.
public final class LlamaModel: Sendable {
    public let weights: ModelWeights
    public let rope: RotaryEmbedding
    public var config: LlamaConfig { weights.config }

    public init(weights: ModelWeights, threads: Int? = nil, source: String = "model") throws {
        try weights.validate(source: source)
        self.weights = weights
        self.rope = RotaryEmbedding(config: weights.config)
        if let threads { ComputeThreads.set(threads) }
    }

    /// A cache for one sequence of up to `capacity` positions (default: the context length).
    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(config: config, capacity: min(capacity ?? config.contextLength, config.contextLength))
    }

    /// Checks ids and room in the cache before any state changes.
    public func check(tokens: [Int], cache: KVCache) throws {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        for t in tokens where t < 0 || t >= config.vocabSize {
            throw ModelError.tokenOutOfRange(t, vocabularySize: config.vocabSize)
        }
        guard cache.count + tokens.count <= cache.capacity else {
            throw ModelError.contextOverflow(needed: cache.count + tokens.count, capacity: cache.capacity)
        }
    }

    /// Writes the embeddings of `tokens` into `x[tokens.count, dim]`.
    public func embed(_ tokens: [Int], into x: UnsafeMutablePointer<Float>) {
        for (t, id) in tokens.enumerated() { weights.tokenEmbedding.copyRow(id, into: x + t * config.dim) }
    }

    /// Runs base layers `layers` over `x[tokens, dim]` in place at positions `start ..< start+tokens`,
    /// filling those layers' caches. Does not advance `cache.count`.
    public func runLayers(_ layers: Range<Int>, x: UnsafeMutablePointer<Float>, tokens: Int, start: Int, cache: KVCache) {
        cache.scratch.ensure(tokens: tokens, config: config, context: start + tokens)
        for l in layers {
            DecoderLayer.forward(weights.layers[l], x: x, tokens: tokens, start: start, cache: cache.layers[l],
                                 rope: rope, config: config, scratch: cache.scratch)
        }
    }

    /// Runs base layers `layers` over the rows of several sequences at once, in place: `x` holds
    /// `batch[0].count` rows of the first sequence, then the second's, and so on. Projections read
    /// each weight once for the whole batch; attention runs per sequence against its own cache.
    /// Does not advance the caches' counts.
    public func runLayers(_ layers: Range<Int>, x: UnsafeMutablePointer<Float>, batch: [BatchRows], scratch: Scratch) {
        guard !batch.isEmpty else { return }
        let tokens = batch.reduce(0) { $0 + $1.count }
        scratch.ensure(tokens: tokens, config: config, context: batch.map { $0.start + $0.count }.max()!)
        for l in layers {
            let rows = batch.map { LayerRows(cache: $0.cache.layers[l], start: $0.start, count: $0.count) }
            DecoderLayer.forward(weights.layers[l], x: x, rows: rows, rope: rope, config: config, scratch: scratch)
        }
    }

    /// `logits[rows, vocab] = W_out · RMSNorm(x[rows], norm)`, with `norm` the final norm by default.
    public func head(_ x: UnsafePointer<Float>, rows: Int, norm: [Float]? = nil, logits: UnsafeMutablePointer<Float>) {
        let xn = UnsafeMutablePointer<Float>.allocate(capacity: rows * config.dim)
        defer { xn.deallocate() }
        (norm ?? weights.finalNorm).withUnsafeBufferPointer {
            Kernels.rmsNorm(x, weight: $0.baseAddress!, out: xn, rows: rows, n: config.dim, eps: config.normEps)
        }
        Linear.forward(weights.output, x: xn, tokens: rows, y: logits)
    }

    /// Which positions' logits a forward pass returns.
    public enum Outputs: Sendable { case last, all }

    /// Runs `tokens` through the whole model after the positions already in `cache`, appends them to
    /// the cache, and returns logits `[vocab]` for the last token or `[tokens, vocab]` for all.
    public func forward(_ tokens: [Int], cache: KVCache, outputs: Outputs = .last) throws -> [Float] {
        try forward(tokens, cache: cache, layers: Array(0..<config.layerCount), outputs: outputs)  // LlamaModel+LayerSubset.swift
    }

    /// `log p(tokens[i] | tokens[..<i])` for `i = 1 ..< tokens.count`, in one prefill.
    public func tokenLogProbabilities(tokens: [Int]) throws -> [Float] {
        guard tokens.count >= 2 else { return [] }
        let logits = try forward(tokens, cache: makeCache(capacity: tokens.count), outputs: .all)
        return Kernels.nextTokenLogProbabilities(logits: logits, tokens: tokens, vocab: config.vocabSize)
    }
}
