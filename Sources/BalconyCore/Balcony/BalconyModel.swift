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

    public var config: LlamaConfig { base.config }

    public init(base: LlamaModel, balconies: [BalconyParameters], source: String = "balconies") throws {
        var layers: [Int: LayerWeights] = [:], norms: [Int: [Float]] = [:]
        for b in balconies {
            guard b.exit >= 1, b.exit < base.config.layerCount else {
                throw BalconyError.exitOutOfRange(b.exit, layers: base.config.layerCount)
            }
            guard layers[b.exit] == nil else { throw BalconyError.duplicateExit(b.exit) }
            try b.validate(config: base.config, source: source)
            layers[b.exit] = b.layerWeights(config: base.config)
            norms[b.exit] = b.norm
        }
        self.base = base
        self.layers = layers
        self.norms = norms
        self.exits = layers.keys.sorted()
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

    /// Runs `tokens` at `choice` after the positions in `cache` and returns logits for the last
    /// token (`[vocab]`) or for all (`[tokens, vocab]`). A cache serves one exit for its lifetime.
    public func forward(_ tokens: [Int], cache: BalconyCache, exit choice: ExitChoice,
                        outputs: LlamaModel.Outputs = .last) throws -> [Float] {
        try validate(choice)
        try base.check(tokens: tokens, cache: cache.base)
        let n = tokens.count, dim = config.dim, vocab = config.vocabSize, start = cache.base.count
        let x = UnsafeMutablePointer<Float>.allocate(capacity: n * dim)
        defer { x.deallocate() }
        base.embed(tokens, into: x)
        var norm: [Float]? = nil
        switch choice {
        case .full:
            base.runLayers(0..<config.layerCount, x: x, tokens: n, start: start, cache: cache.base)
        case let .exit(k):
            base.runLayers(0..<k, x: x, tokens: n, start: start, cache: cache.base)
            DecoderLayer.forward(layers[k]!, x: x, tokens: n, start: start, cache: cache.balconyCache(k),
                                 rope: base.rope, config: config, scratch: cache.base.scratch)
            norm = norms[k]
        }
        cache.base.advance(by: n)
        let rows = outputs == .all ? n : 1
        let first = outputs == .all ? x : x + (n - 1) * dim
        return [Float](unsafeUninitializedCapacity: rows * vocab) { buf, count in
            base.head(first, rows: rows, norm: norm, logits: buf.baseAddress!)
            count = rows * vocab
        }
    }

    /// `log p(tokens[i] | tokens[..<i])` at an exit, in one prefill.
    public func tokenLogProbabilities(tokens: [Int], exit choice: ExitChoice) throws -> [Float] {
        guard tokens.count >= 2 else { return [] }
        let logits = try forward(tokens, cache: makeCache(capacity: tokens.count), exit: choice, outputs: .all)
        let vocab = config.vocabSize
        var out = [Float](repeating: 0, count: tokens.count - 1)
        var lp = [Float](repeating: 0, count: vocab)
        logits.withUnsafeBufferPointer { l in
            lp.withUnsafeMutableBufferPointer { lpb in
                for i in 1..<tokens.count {
                    Kernels.logSoftmax(l.baseAddress! + (i - 1) * vocab, vocab, out: lpb.baseAddress!)
                    out[i - 1] = lpb[tokens[i]]
                }
            }
        }
        return out
    }
}

/// Per-sequence state of a `BalconyModel`: the base model's KV caches (layers used so far) and
/// one KV cache per balcony that has run.
public final class BalconyCache {
    public let base: KVCache
    private var balconies: [Int: LayerKVCache] = [:]
    private let kvDim: Int

    init(model: BalconyModel, capacity: Int) {
        base = KVCache(config: model.config, capacity: capacity)
        kvDim = model.config.kvDim
    }

    public var count: Int { base.count }

    func balconyCache(_ exit: Int) -> LayerKVCache {
        if let c = balconies[exit] { return c }
        let c = LayerKVCache(capacity: base.capacity, kvDim: kvDim)
        balconies[exit] = c
        return c
    }
}
