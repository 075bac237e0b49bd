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
///
/// The sequences are split into one group per compute thread (`parallelTasks`); a group's
/// sequences go through each layer together (their rows in one matrix product per projection),
/// or, for small models, a cache-sized slice of them through all the layers at a time
/// (`BalconyLayerWorkspace.sequencesPerSlice`).
/// Base layers with F32 weights run through the training layer's forward (`BalconyLayerWorkspace`,
/// one per group, reused by every layer): its attention kernel visits only the unmasked key blocks
/// and needs no KV cache. Other weight types (Q8_0) run through the model's batched inference
/// forward, with one cache per sequence allocated once and reused. Both compute
/// `DecoderLayer.forward` up to float rounding; results depend on the thread count only through
/// the grouping of rows in matrix products.
public final class TeacherForward {
    public let model: LlamaModel
    public let exits: [Int]
    private var groups: [Group] = []
    private var exitBuffers: [TrainingBuffer] = []
    private let finalBuffer = TrainingBuffer()

    /// One thread's share of the batch and its buffers.
    private final class Group {
        let layer: BalconyLayerWorkspace
        let x = TrainingBuffer()
        let scratch = Scratch()
        var caches: [KVCache] = []
        init(config: LlamaConfig) { layer = BalconyLayerWorkspace(config: config) }
    }

    public init(model: LlamaModel, exits: [Int]) {
        self.model = model
        self.exits = exits.sorted()
    }

    /// `sequences`: equal-length token sequences, each starting at position 0.
    public func run(_ sequences: [[Int]]) throws -> TeacherOutputs {
        let out = try forward(sequences)
        let n = out.rows * model.config.dim
        return TeacherOutputs(
            rows: out.rows, exitHidden: out.exitHidden.mapValues { Array(UnsafeBufferPointer(start: $0, count: n)) },
            finalNormed: Array(UnsafeBufferPointer(start: out.finalNormed, count: n)))
    }

    /// `run` without copies: the results stay in the teacher's buffers, valid until its next call.
    func forward(_ sequences: [[Int]]) throws
        -> (rows: Int, exitHidden: [Int: UnsafePointer<Float>], finalNormed: UnsafePointer<Float>) {
        let c = model.config, dim = c.dim
        let t = sequences.first?.count ?? 0
        let rows = sequences.count * t
        guard t > 0 else { throw ModelError.emptyInput }
        guard t <= c.contextLength else { throw ModelError.contextOverflow(needed: t, capacity: c.contextLength) }
        for seq in sequences {
            precondition(seq.count == t, "training sequences have equal length")
            for id in seq where id < 0 || id >= c.vocabSize { throw ModelError.tokenOutOfRange(id, vocabularySize: c.vocabSize) }
        }
        let count = min(ComputeThreads.count, sequences.count)
        while groups.count < count { groups.append(Group(config: c)) }
        let per = (sequences.count + count - 1) / count
        let outputs = exits.indices.map { e in
            if e == exitBuffers.count { exitBuffers.append(TrainingBuffer()) }
            return exitBuffers[e].reserve(rows * dim)
        }
        let final = finalBuffer.reserve(rows * dim)
        // A group's sequences go through all the layers a few at a time where a few sequences'
        // activations fit in the core's L2 cache (small models), as in the balcony layers.
        let slice = BalconyLayerWorkspace.sequencesPerSlice(config: c, tokens: t) ?? per
        parallelTasks(count) { g in
            let group = groups[g]
            let groupEnd = min(sequences.count, (g + 1) * per)
            for first in stride(from: g * per, to: groupEnd, by: slice) {
                let n = min(groupEnd, first + slice) - first, offset = first * t * dim
                let x = group.x.reserve(n * t * dim)
                for s in 0..<n { model.embed(sequences[first + s], into: x + s * t * dim) }
                var done = 0
                var current = UnsafePointer(x)
                for (e, k) in (exits + [c.layerCount]).enumerated() {
                    current = runLayers(done..<k, group: group, input: current, sequences: n, tokens: t)
                    done = k
                    if k < c.layerCount { (outputs[e] + offset).update(from: current, count: n * t * dim) }
                }
                model.weights.finalNorm.withUnsafeBufferPointer {
                    Kernels.rmsNorm(current, weight: $0.baseAddress!, out: final + offset, rows: n * t, n: dim, eps: c.normEps)
                }
            }
        }
        return (rows, Dictionary(uniqueKeysWithValues: zip(exits, outputs.map { UnsafePointer($0) })), UnsafePointer(final))
    }

    /// Runs base layers `layers` over a group's rows; returns where their output is (valid until
    /// the group's next call).
    private func runLayers(_ layers: Range<Int>, group: Group, input: UnsafePointer<Float>, sequences: Int,
                           tokens t: Int) -> UnsafePointer<Float> {
        var current = input
        for l in layers {
            let w = model.weights.layers[l]
            if Self.isF32(w) {
                w.withTrainingPointers { p in group.layer.forward(p, input: current, sequences: sequences, tokens: t, backward: false) }
                current = group.layer.output
            } else {
                // The batched inference forward works in place.
                let buffer = group.x.pointer
                if current != UnsafePointer(buffer) { buffer.update(from: current, count: sequences * t * model.config.dim) }
                if group.caches.count < sequences || group.caches[0].capacity < t {
                    group.caches = (0..<sequences).map { _ in model.makeCache(capacity: t) }
                }
                let batch = (0..<sequences).map { BatchRows(cache: group.caches[$0], start: 0, count: t) }
                model.runLayers(l..<(l + 1), x: buffer, batch: batch, scratch: group.scratch)
                current = UnsafePointer(buffer)
            }
        }
        return current
    }

    private static func isF32(_ w: LayerWeights) -> Bool {
        w.matrices.allSatisfy { $0.type == .f32 }
    }
}

extension LayerWeights {
    /// An F32 base layer's tensors as a balcony's pointer view (the exit norm, unused by a layer
    /// forward, points at the attention norm). Valid inside `body`.
    fileprivate func withTrainingPointers<R>(_ body: (BalconyWeightPointers) -> R) -> R {
        func opt<T>(_ a: [Float]?, _ f: (UnsafePointer<Float>?) -> T) -> T {
            guard let a else { return f(nil) }
            return a.withUnsafeBufferPointer { f($0.baseAddress!) }
        }
        return attentionNorm.withUnsafeBufferPointer { an in
            ffnNorm.withUnsafeBufferPointer { fn in
                opt(bq) { bq in opt(bk) { bk in opt(bv) { bv in
                    body(BalconyWeightPointers(
                        attentionNorm: an.baseAddress!, wq: wq.f32, wk: wk.f32, wv: wv.f32, wo: wo.f32, ffnNorm: fn.baseAddress!,
                        gate: gate.f32, up: up.f32, down: down.f32, norm: an.baseAddress!, bq: bq, bk: bk, bv: bv))
                } } }
            }
        }
    }
}
