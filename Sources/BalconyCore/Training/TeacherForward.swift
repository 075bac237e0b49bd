import Foundation

/// What one frozen forward pass of the base model gives training: the hidden state entering each
/// balcony (after base layers `0 ..< k`) and the teacher's head input (after the final norm).
/// The teacher's logits are recomputed from `finalNormed` chunk by chunk by the loss, so nothing of
/// size tokens x vocabulary is kept.
public struct TeacherOutputs {
    /// Rows: sequences x tokens, in order.
    public var rows: Int
    /// `[rows, dim]` per exit depth.
    public var exitHidden: [Int: [Float]]
    /// `[rows, dim]`: RMSNorm_final(h_N), the input of the shared head.
    public var finalNormed: [Float]
}

/// Runs the frozen base model over training sequences without keeping anything for a backward
/// pass: the base model gets no gradients.
public final class TeacherForward {
    public let model: LlamaModel
    public let exits: [Int]
    private var cache: KVCache?

    public init(model: LlamaModel, exits: [Int]) {
        self.model = model
        self.exits = exits.sorted()
    }

    /// `sequences`: equal-length token sequences, each starting at position 0.
    public func run(_ sequences: [[Int]]) throws -> TeacherOutputs {
        let c = model.config
        let t = sequences.first?.count ?? 0
        let rows = sequences.count * t
        var hidden: [Int: [Float]] = [:]
        for k in exits { hidden[k] = [Float](repeating: 0, count: rows * c.dim) }
        var finalNormed = [Float](repeating: 0, count: rows * c.dim)
        if cache == nil || cache!.capacity < t { cache = model.makeCache(capacity: t) }
        let cache = self.cache!
        let x = UnsafeMutablePointer<Float>.allocate(capacity: t * c.dim)
        defer { x.deallocate() }
        for (s, seq) in sequences.enumerated() {
            precondition(seq.count == t, "training sequences have equal length")
            cache.truncate(to: 0)
            try model.check(tokens: seq, cache: cache)
            model.embed(seq, into: x)
            var done = 0
            for k in exits {
                model.runLayers(done..<k, x: x, tokens: t, start: 0, cache: cache)
                done = k
                hidden[k]!.withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: s * t * c.dim).update(from: x, count: t * c.dim) }
            }
            model.runLayers(done..<c.layerCount, x: x, tokens: t, start: 0, cache: cache)
            finalNormed.withUnsafeMutableBufferPointer { out in
                model.weights.finalNorm.withUnsafeBufferPointer {
                    Kernels.rmsNorm(x, weight: $0.baseAddress!, out: out.baseAddress! + s * t * c.dim, rows: t, n: c.dim, eps: c.normEps)
                }
            }
        }
        return TeacherOutputs(rows: rows, exitHidden: hidden, finalNormed: finalNormed)
    }
}
