/// Keys and values of one attention layer for one sequence: `[capacity, kvDim]` each, row-major,
/// rows already rotated by RoPE.
public final class LayerKVCache {
    public let capacity: Int
    public let kvDim: Int
    public let keys: UnsafeMutablePointer<Float>
    public let values: UnsafeMutablePointer<Float>

    public init(capacity: Int, kvDim: Int) {
        self.capacity = capacity
        self.kvDim = kvDim
        keys = .allocate(capacity: capacity * kvDim)
        values = .allocate(capacity: capacity * kvDim)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes held.
    public var byteCount: Int { 2 * capacity * kvDim * 4 }
}

/// Per-sequence state of a model: one `LayerKVCache` per decoder layer and the number of
/// positions filled. Not shared between sequences or threads.
public final class KVCache {
    public let layers: [LayerKVCache]
    /// Positions already processed (the position of the next token).
    public internal(set) var count: Int = 0 {
        didSet { precondition(count <= capacity) }
    }
    public let capacity: Int
    /// Activation buffers reused across this sequence's forward passes.
    let scratch = Scratch()

    public init(config: LlamaConfig, capacity: Int? = nil, layerCount: Int? = nil) {
        let cap = capacity ?? config.contextLength
        self.capacity = cap
        layers = (0..<(layerCount ?? config.layerCount)).map { _ in LayerKVCache(capacity: cap, kvDim: config.kvDim) }
    }

    /// Forgets positions from `position` on (they will be overwritten); used to roll back drafts.
    public func truncate(to position: Int) {
        count = min(count, max(0, position))
    }

    public func advance(by n: Int) { count += n }

    public var byteCount: Int { layers.reduce(0) { $0 + $1.byteCount } }
}

/// One sequence's rows in a batched forward pass (`LlamaModel.runLayers(_:x:batch:scratch:)`).
public typealias BatchRows = SequenceRows<KVCache>

/// One sequence's share of a batch: `count` consecutive rows of the activations, at positions
/// `start ..< start + count`, with `cache` (the sequence's whole cache, or one layer's) holding the
/// positions before them. The caller advances the cache's count afterwards.
public struct SequenceRows<Cache> {
    public let cache: Cache
    public let start: Int
    public let count: Int

    public init(cache: Cache, start: Int, count: Int) {
        self.cache = cache
        self.start = start
        self.count = count
    }
}
