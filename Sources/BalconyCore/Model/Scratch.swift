/// Reusable activation buffers for a forward pass over up to `tokens` rows, so that decoding does
/// not allocate per token. Grown on demand, owned by one sequence's cache, or by whoever runs a
/// batch of sequences together (`LlamaModel.runLayers(_:x:batch:scratch:)`).
public final class Scratch {
    private(set) var tokens = 0
    private(set) var scoreCapacity = 0
    var xn = UnsafeMutablePointer<Float>.allocate(capacity: 1)      // [T, dim]
    var q = UnsafeMutablePointer<Float>.allocate(capacity: 1)       // [T, qDim]
    var k = UnsafeMutablePointer<Float>.allocate(capacity: 1)       // [T, kvDim]
    var v = UnsafeMutablePointer<Float>.allocate(capacity: 1)       // [T, kvDim]
    var att = UnsafeMutablePointer<Float>.allocate(capacity: 1)     // [T, qDim]
    var proj = UnsafeMutablePointer<Float>.allocate(capacity: 1)    // [T, dim]
    var gate = UnsafeMutablePointer<Float>.allocate(capacity: 1)    // [T, hidden]
    var up = UnsafeMutablePointer<Float>.allocate(capacity: 1)      // [T, hidden]
    var scores = UnsafeMutablePointer<Float>.allocate(capacity: 1)  // Attention.scoreCount floats

    public init() {}

    /// Grows the buffers to hold `tokens` rows attending over up to `context` positions.
    public func ensure(tokens t: Int, config c: LlamaConfig, context: Int) {
        if t > tokens {
            for p in [xn, q, k, v, att, proj, gate, up] { p.deallocate() }
            xn = .allocate(capacity: t * c.dim)
            q = .allocate(capacity: t * c.qDim)
            k = .allocate(capacity: t * c.kvDim)
            v = .allocate(capacity: t * c.kvDim)
            att = .allocate(capacity: t * c.qDim)
            proj = .allocate(capacity: t * c.dim)
            gate = .allocate(capacity: t * c.hiddenDim)
            up = .allocate(capacity: t * c.hiddenDim)
            tokens = t
        }
        let need = Attention.scoreCount(tokens: t, context: context, config: c, threads: ComputeThreads.count)
        if need > scoreCapacity {
            scores.deallocate()
            scores = .allocate(capacity: need)
            scoreCapacity = need
        }
    }

    deinit {
        for p in [xn, q, k, v, att, proj, gate, up, scores] { p.deallocate() }
    }
}
