import Foundation

/// Which depth a forward pass exits at.
public enum ExitChoice: Sendable, Hashable, CustomStringConvertible {
    /// The whole base model: N layers, the final norm and the head.
    case full
    /// Exit k: base layers `0 ..< k`, the balcony at k, its norm and the shared head.
    case exit(Int)

    public init(parsing s: String) throws {
        if s.lowercased() == "full" { self = .full; return }
        guard let k = Int(s) else { throw BalconyError.invalidExit(s) }
        self = .exit(k)
    }

    public var description: String {
        switch self {
        case .full: return "full"
        case let .exit(k): return "\(k)"
        }
    }
}

/// Errors of using balconies on a model.
public enum BalconyError: LocalizedError, Equatable {
    case invalidExit(String)
    case unknownExit(Int, available: [Int])
    case exitOutOfRange(Int, layers: Int)
    case duplicateExit(Int)
    case noBalconies(ExitChoice)

    public var errorDescription: String? {
        switch self {
        case let .invalidExit(s):
            return "'\(s)' is not an exit: give a trained exit depth or 'full'"
        case let .unknownExit(k, available):
            return "no balcony at exit \(k); this balcony file has exits \(available.map(String.init).joined(separator: ", ")) (or use 'full')"
        case let .exitOutOfRange(k, layers):
            return "exit \(k) is outside 1...\(layers - 1) for this \(layers)-layer model"
        case let .duplicateExit(k):
            return "exit \(k) is listed twice"
        case let .noBalconies(choice):
            return "exit \(choice) needs trained balconies: pass --balconies FILE (made by 'balcony train')"
        }
    }
}

/// A frozen base model plus balconies at chosen exit depths (the paper's exits). Immutable and
/// shareable; per-sequence state lives in `BalconyCache`.
public final class BalconyModel: Sendable {
    public let base: LlamaModel
    /// Balcony layers and exit norms by exit depth.
    public let layers: [Int: LayerWeights]
    public let norms: [Int: [Float]]
    /// Exit depths, ascending.
    public let exits: [Int]

    /// The element type the balcony layers run in (F32 as trained, or a block type chosen at load).
    public let weightType: BalconyWeightType
    /// Balcony matrices left in F32 because their rows are not whole blocks of `weightType`.
    public let matricesKeptF32: Int

    public var config: LlamaConfig { base.config }

    /// - Parameter weightType: quantizes the balconies' product matrices at load (`.base` picks the
    ///   base model's own block type); norms and biases stay F32, as in llama.cpp's files.
    public init(base: LlamaModel, balconies: [BalconyParameters], source: String = "balconies",
                weightType: BalconyWeightType = .f32) throws {
        let type = weightType.resolved(for: base.weights)
        var layers: [Int: LayerWeights] = [:], norms: [Int: [Float]] = [:], kept = 0
        for b in balconies {
            guard b.exit >= 1, b.exit < base.config.layerCount else {
                throw BalconyError.exitOutOfRange(b.exit, layers: base.config.layerCount)
            }
            guard layers[b.exit] == nil else { throw BalconyError.duplicateExit(b.exit) }
            try b.validate(config: base.config, source: source)
            var layer = b.layerWeights(config: base.config)
            if case let .quantized(q) = type {
                let (quantized, keptF32) = layer.quantized(to: q)
                layer = quantized
                kept += keptF32
            }
            layers[b.exit] = layer
            norms[b.exit] = b.norm
        }
        self.base = base
        self.layers = layers
        self.norms = norms
        self.exits = layers.keys.sorted()
        self.weightType = type
        self.matricesKeptF32 = kept
    }

    /// Checks that `choice` names a trained exit (or full).
    public func validate(_ choice: ExitChoice) throws {
        if case let .exit(k) = choice {
            guard k >= 1, k < config.layerCount else { throw BalconyError.exitOutOfRange(k, layers: config.layerCount) }
            guard layers[k] != nil else { throw BalconyError.unknownExit(k, available: exits) }
        }
    }

    /// Layers run per token at an exit (k base layers + the balcony), against N for the full model.
    public func layersRun(_ choice: ExitChoice) -> Int {
        switch choice {
        case .full: return config.layerCount
        case let .exit(k): return k + 1
        }
    }

    public func makeCache(capacity: Int? = nil) -> BalconyCache {
        BalconyCache(model: self, capacity: min(capacity ?? config.contextLength, config.contextLength))
    }

    /// Appends `tokens` to the sequence in `cache` and runs them at `choice`; returns logits for the
    /// last token (`[vocab]`) or for every new token (`[tokens, vocab]`).
    ///
    /// The exit may differ from call to call: layers and the balcony that earlier calls skipped are
    /// first brought up to date for the earlier positions (from the hidden states the cache keeps
    /// at every exit depth), so the result always equals what `choice` would give had it processed
    /// the whole sequence (see docs/dynamic-inference.md).
    public func forward(_ tokens: [Int], cache: BalconyCache, exit choice: ExitChoice,
                        outputs: LlamaModel.Outputs = .last) throws -> [Float] {
        try validate(choice)
        try base.check(tokens: tokens, cache: cache.base)
        let from = cache.count
        let rows = outputs == .all ? tokens.count : 1
        return try run(appending: tokens, cache: cache, exit: choice, logitsFrom: from + tokens.count - rows)
    }

    /// Logits at `choice` for positions `from ..< cache.count`, without appending tokens: brings the
    /// layers `choice` needs up to date for every position first. Self-speculative decoding verifies
    /// a draft this way: the full model runs only layers k..N-1 over the drafted positions.
    public func logits(cache: BalconyCache, exit choice: ExitChoice, from: Int) throws -> [Float] {
        try validate(choice)
        precondition(from >= 0 && from < cache.count, "logits are asked for positions the cache holds")
        return try run(appending: [], cache: cache, exit: choice, logitsFrom: from)
    }

    /// The one code path behind `forward` and `logits`. Rows of the working buffer are positions
    /// `lo ..< end`; layer l runs over the suffix of rows it lacks (`cache.filled[l] ..< end`), which
    /// only grows with depth, because earlier calls stopped at exit depths.
    private func run(appending tokens: [Int], cache: BalconyCache, exit choice: ExitChoice, logitsFrom: Int) throws -> [Float] {
        let c = config, dim = c.dim, vocab = c.vocabSize
        let start = cache.count
        let end = start + tokens.count
        let depth: Int
        switch choice {
        case .full: depth = c.layerCount
        case let .exit(k): depth = k
        }
        // The first position any needed layer (or the balcony, or the logits) lacks.
        var lo = min(start, logitsFrom)
        for l in 0..<depth { lo = min(lo, cache.filled[l]) }
        if case let .exit(k) = choice { lo = min(lo, cache.balconyFilled(k)) }
        let rowsTotal = end - lo
        guard rowsTotal > 0 else { return [] }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: rowsTotal * dim)
        defer { x.deallocate() }
        cache.base.scratch.ensure(tokens: rowsTotal, config: c, context: end)
        if !tokens.isEmpty { base.embed(tokens, into: x + (start - lo) * dim) }
        var active = start  // rows active..<end of x hold the hidden state entering the current layer
        for l in 0..<depth {
            let need = cache.filled[l]
            if need < active {
                // Positions that stopped before this depth re-enter with the hidden state saved here.
                cache.loadHidden(depth: l, rows: need..<active, into: x + (need - lo) * dim)
                active = need
            }
            if layers[l] != nil { cache.saveHidden(depth: l, rows: active..<end, from: x + (active - lo) * dim) }
            if active < end {
                DecoderLayer.forward(base.weights.layers[l], x: x + (active - lo) * dim, tokens: end - active, start: active,
                                     cache: cache.base.layers[l], rope: base.rope, config: c, scratch: cache.base.scratch)
                cache.filled[l] = end
            }
        }
        var norm: [Float]? = nil
        var outFrom = active
        if case let .exit(k) = choice {
            // The balcony reads h_k; rows it has not seen yet come from the saved states.
            cache.saveHidden(depth: k, rows: active..<end, from: x + (active - lo) * dim)
            let b0 = cache.balconyFilled(k)
            cache.loadHidden(depth: k, rows: b0..<end, into: x + (b0 - lo) * dim)
            DecoderLayer.forward(layers[k]!, x: x + (b0 - lo) * dim, tokens: end - b0, start: b0,
                                 cache: cache.balconyCache(k), rope: base.rope, config: c, scratch: cache.base.scratch)
            cache.setBalconyFilled(k, end)
            norm = norms[k]
            outFrom = b0
        }
        cache.base.count = end
        precondition(logitsFrom >= outFrom, "rows asked for were computed at this depth")
        let rows = end - logitsFrom
        return [Float](unsafeUninitializedCapacity: rows * vocab) { buf, count in
            base.head(x + (logitsFrom - lo) * dim, rows: rows, norm: norm, logits: buf.baseAddress!)
            count = rows * vocab
        }
    }

    /// `log p(tokens[i] | tokens[..<i])` at an exit, in one prefill.
    public func tokenLogProbabilities(tokens: [Int], exit choice: ExitChoice) throws -> [Float] {
        guard tokens.count >= 2 else { return [] }
        let logits = try forward(tokens, cache: makeCache(capacity: tokens.count), exit: choice, outputs: .all)
        return Kernels.nextTokenLogProbabilities(logits: logits, tokens: tokens, vocab: config.vocabSize)
    }
}

/// Per-sequence state of a `BalconyModel`: the base model's KV caches, one KV cache per balcony
/// that has run, how many positions each layer and balcony holds, and the hidden state of every
/// position at every exit depth (what makes switching exits cheap: a deeper exit resumes from the
/// saved states instead of re-running the layers below; memory `capacity x dim x exits` floats).
public final class BalconyCache {
    public let base: KVCache
    /// Positions each base layer has keys/values for.
    public internal(set) var filled: [Int]
    private var balconies: [Int: LayerKVCache] = [:]
    private var balconyCount: [Int: Int] = [:]
    /// Hidden states entering layer `depth`, `[capacity, dim]`, for the exit depths.
    private var hidden: [Int: UnsafeMutablePointer<Float>] = [:]
    private let dim: Int
    private let kvDim: Int

    init(model: BalconyModel, capacity: Int) {
        base = KVCache(config: model.config, capacity: capacity)
        filled = [Int](repeating: 0, count: model.config.layerCount)
        dim = model.config.dim
        kvDim = model.config.kvDim
        for k in model.exits { hidden[k] = .allocate(capacity: capacity * dim) }
    }

    deinit { for p in hidden.values { p.deallocate() } }

    /// Positions in the sequence.
    public var count: Int { base.count }
    public var capacity: Int { base.capacity }

    /// Forgets positions from `position` on, at every depth (rolls back a rejected draft).
    public func truncate(to position: Int) {
        base.truncate(to: position)
        for l in filled.indices { filled[l] = min(filled[l], base.count) }
        for k in balconyCount.keys { balconyCount[k] = min(balconyCount[k]!, base.count) }
    }

    /// Bytes held: KV caches plus saved hidden states.
    public var byteCount: Int {
        base.byteCount + balconies.values.reduce(0) { $0 + $1.byteCount } + hidden.count * capacity * dim * 4
    }

    func balconyFilled(_ exit: Int) -> Int { balconyCount[exit] ?? 0 }
    func setBalconyFilled(_ exit: Int, _ n: Int) { balconyCount[exit] = n }

    func balconyCache(_ exit: Int) -> LayerKVCache {
        if let c = balconies[exit] { return c }
        let c = LayerKVCache(capacity: base.capacity, kvDim: kvDim)
        balconies[exit] = c
        return c
    }

    func saveHidden(depth: Int, rows: Range<Int>, from x: UnsafePointer<Float>) {
        guard let h = hidden[depth], !rows.isEmpty else { return }
        (h + rows.lowerBound * dim).update(from: x, count: rows.count * dim)
    }

    func loadHidden(depth: Int, rows: Range<Int>, into x: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty else { return }
        guard let h = hidden[depth] else { preconditionFailure("hidden states are kept at exit depths only") }
        x.update(from: h + rows.lowerBound * dim, count: rows.count * dim)
    }
}
