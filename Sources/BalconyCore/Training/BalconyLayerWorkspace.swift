import Foundation

/// Forward and backward of one balcony's decoder layer over a training batch, and the buffers
/// that connect them.
///
/// A batch is `sequences` independent sequences of `tokens` positions each (positions `0 ..<
/// tokens`, causal attention within each sequence), stored as rows `[sequences * tokens, dim]`.
/// `forward` computes exactly what `DecoderLayer.forward` computes for each sequence and saves
/// the activations the backward pass needs; `backward` adds the parameter gradients into a
/// `BalconyParameters`. The base model is frozen, so no gradient w.r.t. the layer input is formed.
///
/// Memory model: one workspace per balcony (all exits run forward before any runs backward).
/// Buffers grow to the largest batch seen and are reused by every later step, so a step
/// allocates nothing. Saved activations take about `N * (6 dim + 2 qDim + 2 kvDim + 3 hidden)`
/// floats plus about `sequences * heads * tokens² / 2` for the attention probabilities, and backward
/// scratch about `R * (2 dim + 2 qDim + 2 kvDim + 2 hidden)` (`N = sequences * tokens`, `R` the
/// rows of the largest slice, `N` when the batch is not sliced). Not thread-safe: one training
/// step uses it at a time.
public final class BalconyLayerWorkspace {
    public let config: LlamaConfig
    private let rope: RotaryEmbedding
    private var ropeTable: RopeTable?
    /// Shape of the batch of the last `forward`.
    public private(set) var sequences = 0
    public private(set) var tokens = 0
    /// Rows of the last batch: `sequences * tokens`.
    public var rows: Int { sequences * tokens }
    /// Whether the last `forward` kept what `backward` needs.
    private var canBackward = false

    // Saved by forward, N = sequences * tokens.
    private let input = TrainingBuffer()      // [N, dim]      the layer input h_k
    private let invRms1 = TrainingBuffer()    // [N]           attention norm 1/rms
    private let xn1 = TrainingBuffer()        // [N, dim]      attention norm output
    private let q = TrainingBuffer()          // [N, qDim]     queries after bias and RoPE
    private let k = TrainingBuffer()          // [N, kvDim]    keys after bias and RoPE
    private let v = TrainingBuffer()          // [N, kvDim]    values
    private let probs = TrainingBuffer()      // [S, heads, ~T²/2] attention probabilities (lower triangle)
    private let att = TrainingBuffer()        // [N, qDim]     attention output before o_proj
    private let h2 = TrainingBuffer()         // [N, dim]      residual stream after attention
    private let invRms2 = TrainingBuffer()    // [N]           ffn norm 1/rms
    private let xn2 = TrainingBuffer()        // [N, dim]      ffn norm output
    private let gate = TrainingBuffer()       // [N, hidden]   gate_proj output (pre-activation)
    private let up = TrainingBuffer()         // [N, hidden]   up_proj output
    private let act = TrainingBuffer()        // [N, hidden]   silu(gate) * up
    private let out = TrainingBuffer()        // [N, dim]      layer output
    private let dOutput = TrainingBuffer()    // [N, dim]      gradient w.r.t. the output (filled by the caller)

    // Backward scratch.
    private let dAct = TrainingBuffer()       // [N, hidden]   d act, then d gate
    private let dUp = TrainingBuffer()        // [N, hidden]
    private let dXn = TrainingBuffer()        // [N, dim]      d of the ffn norm's output, then x̂ = x / rms
    private let dH2 = TrainingBuffer()        // [N, dim]
    private let dAtt = TrainingBuffer()       // [N, qDim]
    private let dQ = TrainingBuffer()         // [N, qDim]
    private let dK = TrainingBuffer()         // [N, kvDim]
    private let dV = TrainingBuffer()         // [N, kvDim]
    private let projectionGradient = TrainingBuffer() // [qDim, dim] dP^T · x̂ for one projection

    public init(config: LlamaConfig) {
        self.config = config
        rope = RotaryEmbedding(config: config)
    }

    /// The layer output of the last `forward`, `[rows, dim]`; valid until the next `forward`.
    public var output: UnsafePointer<Float> { UnsafePointer(out.pointer) }

    /// A `[rows, dim]` buffer for the gradient w.r.t. the output, sized by `forward`, for the
    /// caller (the exit loss) to fill before `backward`.
    public var outputGradient: UnsafeMutablePointer<Float> { dOutput.pointer }

    /// Bytes held by the workspace's buffers.
    public var byteCount: Int {
        [input, invRms1, xn1, q, k, v, probs, att, h2, invRms2, xn2, gate, up, act, out, dOutput,
         dAct, dUp, dXn, dH2, dAtt, dQ, dK, dV, projectionGradient].reduce(0) { $0 + 4 * $1.capacity }
    }

    private func reserve(sequences s: Int, tokens t: Int, probabilities: Bool) {
        let c = config, n = s * t
        sequences = s
        tokens = t
        if ropeTable?.positions != t { ropeTable = RopeTable(rope: rope, positions: t) }
        for b in [input, xn1, h2, xn2, out] { b.reserve(n * c.dim) }
        for b in [invRms1, invRms2] { b.reserve(n) }
        for b in [q, att] { b.reserve(n * c.qDim) }
        for b in [k, v] { b.reserve(n * c.kvDim) }
        for b in [gate, up, act] { b.reserve(n * c.hiddenDim) }
        if probabilities {
            dOutput.reserve(n * c.dim)
            probs.reserve(TrainingAttention.probabilityCount(sequences: s, tokens: t, config: c))
        }
    }

    /// The backward scratch, for `rows` rows (one slice at a time: the largest slice's rows).
    /// Only a layer that will run backward allocates it; the teacher's layers never do.
    private func reserveBackward(rows n: Int) {
        let c = config
        for b in [dXn, dH2] { b.reserve(n * c.dim) }
        for b in [dAtt, dQ] { b.reserve(n * c.qDim) }
        for b in [dK, dV] { b.reserve(n * c.kvDim) }
        for b in [dAct, dUp] { b.reserve(n * c.hiddenDim) }
        projectionGradient.reserve(max(c.qDim, c.kvDim) * c.dim)
    }

    /// Stops on parameters shaped for another model: the kernels would read past their arrays.
    private func checkShapes(_ p: BalconyParameters, _ role: String) {
        let c = config
        let ok = p.attentionNorm.count == c.dim && p.wq.count == c.qDim * c.dim && p.wk.count == c.kvDim * c.dim
            && p.wv.count == c.kvDim * c.dim && p.wo.count == c.dim * c.qDim && p.ffnNorm.count == c.dim
            && p.gate.count == c.hiddenDim * c.dim && p.up.count == c.hiddenDim * c.dim
            && p.down.count == c.dim * c.hiddenDim && p.norm.count == c.dim
            && (p.bq?.count ?? c.qDim) == c.qDim && (p.bk?.count ?? c.kvDim) == c.kvDim && (p.bv?.count ?? c.kvDim) == c.kvDim
            && (p.bq != nil) == (p.bk != nil) && (p.bk != nil) == (p.bv != nil)
        precondition(ok, "\(role) is not shaped for this workspace's configuration")
    }

    /// Runs the layer with weights `p` over `x[sequences * tokens, dim]` into `output`, saving
    /// activations for `backward`.
    public func forward(_ p: BalconyParameters, input x: UnsafePointer<Float>, sequences s: Int, tokens t: Int) {
        checkShapes(p, "balcony parameters")
        p.withPointers { w in forward(w, input: x, sequences: s, tokens: t) }
    }

    /// `forward` with weights given as pointers (shaped for `config`, unchecked): also runs the
    /// frozen base model's F32 layers for the teacher, which passes `backward: false` (the
    /// attention probabilities are then not kept, and `backward` may not follow). `x` may be this
    /// workspace's `output` from a batch of the same shape (each slice reads its rows of `x`
    /// before it writes its rows of `output`).
    func forward(_ w: BalconyWeightPointers, input x: UnsafePointer<Float>, sequences s: Int, tokens t: Int,
                 backward: Bool = true) {
        precondition(s > 0 && t > 0, "empty batch")
        reserve(sequences: s, tokens: t, probabilities: backward)
        canBackward = backward
        for slice in slices() { forward(w, input: x, slice: slice, backward: backward) }
    }

    /// Sequences per slice when the batch is taken through a layer a few sequences at a time, so
    /// that a slice's activations stay in the core's L2 cache from one operation to the next
    /// (where a whole batch's rows went out to memory and back at every step): as many as fit in
    /// about 1 MiB (one sequence of 256 tokens at dim 64, 4 KiB a row). Nil when a single
    /// sequence needs more than twice that (a 110M model's rows are 48 KiB): slicing cannot keep
    /// it in cache and only shortens the products.
    static func sequencesPerSlice(config c: LlamaConfig, tokens: Int) -> Int? {
        let budget = 1 << 20
        let sequenceBytes = 4 * tokens * (5 * c.dim + 2 * c.qDim + 2 * c.kvDim + 3 * c.hiddenDim)
        return sequenceBytes > 2 * budget ? nil : max(1, budget / sequenceBytes)
    }

    /// Forces slices of this many sequences whatever the threads and shapes (tests).
    var sequencesPerSliceOverride: Int?

    /// The batch's sequences in slices (see `sequencesPerSlice`), which `forward` and `backward`
    /// take through the whole layer one after another. Only inside `parallelTasks` (or on one
    /// thread), where the kernels run on one core; otherwise the whole batch is one slice, so
    /// that every product has enough rows for all the threads.
    private func slices() -> [Range<Int>] {
        let oneCore = ComputeThreads.count == 1 || SerialKernels.active
        let per = sequencesPerSliceOverride
            ?? (oneCore ? Self.sequencesPerSlice(config: config, tokens: tokens) : nil) ?? sequences
        return stride(from: 0, to: sequences, by: max(1, per)).map { $0 ..< min(sequences, $0 + max(1, per)) }
    }

    /// The saved attention probabilities from sequence `s` of the batch on.
    private func probabilities(from s: Int) -> UnsafeMutablePointer<Float> {
        probs.pointer + s * TrainingAttention.probabilityCount(sequences: 1, tokens: tokens, config: config)
    }

    /// `forward` for the sequences `slice` of the batch: rows `slice.lowerBound * tokens` on of
    /// every buffer. Reads only its own rows of `x` before writing its own rows of `output`.
    private func forward(_ w: BalconyWeightPointers, input x: UnsafePointer<Float>, slice: Range<Int>, backward: Bool) {
        let c = config, n = slice.count * tokens, r0 = slice.lowerBound * tokens, dim = c.dim, hidden = c.hiddenDim
        func rows(_ b: TrainingBuffer, _ width: Int) -> UnsafeMutablePointer<Float> { b.pointer + r0 * width }
        let x = x + r0 * dim
        let xn1 = rows(xn1, dim), q = rows(q, c.qDim), k = rows(k, c.kvDim), v = rows(v, c.kvDim)
        let att = rows(att, c.qDim), h2 = rows(h2, dim), xn2 = rows(xn2, dim)
        let gate = rows(gate, hidden), up = rows(up, hidden), act = rows(act, hidden), out = rows(out, dim)
        let probs = backward ? probabilities(from: slice.lowerBound) : nil
        rows(input, dim).update(from: x, count: n * dim)
        TrainingKernels.rmsNorm(x, weight: w.attentionNorm, out: xn1, invRms: rows(invRms1, 1), rows: n, n: dim, eps: c.normEps)
        BLAS.gemmNT(m: n, n: c.qDim, k: dim, a: xn1, lda: dim, b: w.wq, ldb: dim, c: q, ldc: c.qDim)
        BLAS.gemmNT(m: n, n: c.kvDim, k: dim, a: xn1, lda: dim, b: w.wk, ldb: dim, c: k, ldc: c.kvDim)
        BLAS.gemmNT(m: n, n: c.kvDim, k: dim, a: xn1, lda: dim, b: w.wv, ldb: dim, c: v, ldc: c.kvDim)
        if let b = w.bq { Kernels.addBias(q, bias: b, rows: n, n: c.qDim) }
        if let b = w.bk { Kernels.addBias(k, bias: b, rows: n, n: c.kvDim) }
        if let b = w.bv { Kernels.addBias(v, bias: b, rows: n, n: c.kvDim) }
        ropeTable!.rotate(q, rows: n, heads: c.headCount, inverse: false)
        ropeTable!.rotate(k, rows: n, heads: c.kvHeadCount, inverse: false)
        TrainingAttention.forward(q: q, k: k, v: v, probs: probs, out: att, sequences: slice.count, tokens: tokens, config: c)
        // h2 = x + att · Wo^T
        h2.update(from: x, count: n * dim)
        BLAS.gemmNT(m: n, n: dim, k: c.qDim, a: att, lda: c.qDim, b: w.wo, ldb: c.qDim, c: h2, ldc: dim, beta: 1)
        TrainingKernels.rmsNorm(h2, weight: w.ffnNorm, out: xn2, invRms: rows(invRms2, 1), rows: n, n: dim, eps: c.normEps)
        BLAS.gemmNT(m: n, n: hidden, k: dim, a: xn2, lda: dim, b: w.gate, ldb: dim, c: gate, ldc: hidden)
        BLAS.gemmNT(m: n, n: hidden, k: dim, a: xn2, lda: dim, b: w.up, ldb: dim, c: up, ldc: hidden)
        TrainingKernels.swiglu(gate: gate, up: up, out: act, count: n * hidden)
        // out = h2 + act · Wd^T
        out.update(from: h2, count: n * dim)
        BLAS.gemmNT(m: n, n: dim, k: hidden, a: act, lda: hidden, b: w.down, ldb: hidden, c: out, ldc: dim, beta: 1)
    }

    /// Adds the gradients of the layer's parameters, given `dOut[rows, dim]` (the gradient of
    /// the loss w.r.t. the last `forward`'s output), into `grad` (+=, so that micro-batches
    /// accumulate). `p` must be the weights the last `forward` ran with. The exit norm's
    /// gradient (`grad.norm`) is the exit loss's to fill, not this layer's.
    public func backward(_ p: BalconyParameters, outputGradient dOut: UnsafePointer<Float>,
                         accumulatingInto grad: inout BalconyParameters) {
        precondition(rows > 0 && canBackward, "backward before forward, or after a forward without backward")
        checkShapes(p, "balcony parameters")
        checkShapes(grad, "gradient")
        precondition((grad.bq != nil) == (p.bq != nil), "gradient and weights disagree on biases")
        let slices = slices()
        reserveBackward(rows: slices.map(\.count).max()! * tokens)
        p.withPointers { w in
            grad.withMutablePointers { g in
                for slice in slices { backward(w, outputGradient: dOut, slice: slice, gradients: g) }
            }
        }
    }

    /// `backward` for the sequences `slice` of the batch: its rows of the saved activations and of
    /// `dOut`, the backward scratch from row 0 (one slice at a time). Parameter gradients are
    /// added, so the slices sum into them.
    private func backward(_ w: BalconyWeightPointers, outputGradient dOut: UnsafePointer<Float>, slice: Range<Int>,
                          gradients g: BalconyGradientPointers) {
        let c = config, n = slice.count * tokens, r0 = slice.lowerBound * tokens
        let dim = c.dim, hidden = c.hiddenDim, qDim = c.qDim, kvDim = c.kvDim
        func rows(_ b: TrainingBuffer, _ width: Int) -> UnsafeMutablePointer<Float> { b.pointer + r0 * width }
        let dOut = dOut + r0 * dim
        let q = rows(q, qDim), k = rows(k, kvDim), v = rows(v, kvDim), att = rows(att, qDim), h2 = rows(h2, dim)
        let xn2 = rows(xn2, dim), gate = rows(gate, hidden), up = rows(up, hidden), act = rows(act, hidden)
        let probs = probabilities(from: slice.lowerBound)
        let dAct = dAct.pointer, dUp = dUp.pointer, dXn = dXn.pointer, dH2 = dH2.pointer, dAtt = dAtt.pointer
        let dQ = dQ.pointer, dK = dK.pointer, dV = dV.pointer

        // MLP: out = h2 + (silu(xn2 Wg^T) * (xn2 Wu^T)) Wd^T
        BLAS.gemmTN(m: dim, n: hidden, k: n, a: dOut, lda: dim, b: act, ldb: hidden, c: g.down, ldc: hidden, beta: 1)
        BLAS.gemmNN(m: n, n: hidden, k: dim, a: dOut, lda: dim, b: w.down, ldb: hidden, c: dAct, ldc: hidden)
        TrainingKernels.swigluBackward(gate: gate, up: up, dAct: dAct, dUp: dUp, count: n * hidden)
        BLAS.gemmTN(m: hidden, n: dim, k: n, a: dAct, lda: hidden, b: xn2, ldb: dim, c: g.gate, ldc: dim, beta: 1)
        BLAS.gemmTN(m: hidden, n: dim, k: n, a: dUp, lda: hidden, b: xn2, ldb: dim, c: g.up, ldc: dim, beta: 1)
        BLAS.gemmNN(m: n, n: dim, k: hidden, a: dAct, lda: hidden, b: w.gate, ldb: dim, c: dXn, ldc: dim)
        BLAS.gemmNN(m: n, n: dim, k: hidden, a: dUp, lda: hidden, b: w.up, ldb: dim, c: dXn, ldc: dim, beta: 1)
        // Residual: dH2 = dOut + the ffn norm's input gradient.
        dH2.update(from: dOut, count: n * dim)
        TrainingKernels.rmsNormBackward(h2, invRms: rows(invRms2, 1), weight: w.ffnNorm, dOut: dXn,
                                        rows: n, n: dim, dWeight: g.ffnNorm, dX: dH2, accumulate: true)

        // Attention: h2 = x + Attn(q, k, v) Wo^T
        BLAS.gemmTN(m: dim, n: qDim, k: n, a: dH2, lda: dim, b: att, ldb: qDim, c: g.wo, ldc: qDim, beta: 1)
        BLAS.gemmNN(m: n, n: qDim, k: dim, a: dH2, lda: dim, b: w.wo, ldb: qDim, c: dAtt, ldc: qDim)
        TrainingAttention.backward(q: q, k: k, v: v, probs: probs, dOut: dAtt, dQ: dQ, dK: dK, dV: dV,
                                   sequences: slice.count, tokens: tokens, config: c)
        // RoPE is a rotation per position: its backward rotates by the opposite angle.
        ropeTable!.rotate(dQ, rows: n, heads: c.headCount, inverse: true)
        ropeTable!.rotate(dK, rows: n, heads: c.kvHeadCount, inverse: true)
        if let b = g.bq { TrainingKernels.addColumnSums(dQ, rows: n, n: qDim, into: b) }
        if let b = g.bk { TrainingKernels.addColumnSums(dK, rows: n, n: kvDim, into: b) }
        if let b = g.bv { TrainingKernels.addColumnSums(dV, rows: n, n: kvDim, into: b) }
        // Each projection P of the normed input x̂ ⊙ w (x̂ = x / rms) needs G = dP^T · x̂ only:
        // its weight gradient is G ⊙ w (w per column), and the attention norm's weight
        // gradient is Σ_j W_P[j][i] G[j][i]. The layer input is frozen, so the gradient
        // w.r.t. the norm's output, three more products over every row, is never formed.
        let xhat = dXn
        TrainingKernels.scaleRows(rows(input, dim), by: rows(invRms1, 1), rows: n, n: dim, out: xhat)
        let gp = projectionGradient.pointer
        for (d, outputs, weight, gradient) in [(dQ, qDim, w.wq, g.wq), (dK, kvDim, w.wk, g.wk), (dV, kvDim, w.wv, g.wv)] {
            BLAS.gemmTN(m: outputs, n: dim, k: n, a: d, lda: outputs, b: xhat, ldb: dim, c: gp, ldc: dim)
            for j in 0..<outputs {
                for i in 0..<dim {
                    let gji = gp[j * dim + i]
                    gradient[j * dim + i] += gji * w.attentionNorm[i]
                    g.attentionNorm[i] += weight[j * dim + i] * gji
                }
            }
        }
    }
}
