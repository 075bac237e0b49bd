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
/// allocates nothing. Saved activations take about `N * (5 dim + 3 qDim + 3 kvDim + 3 hidden)`
/// floats plus about `sequences * heads * tokens² / 2` for the attention probabilities, and backward
/// scratch about `N * (2 dim + 2 qDim + 2 kvDim + 2 hidden)` (`N = sequences * tokens`). Not
/// thread-safe: one training step uses it at a time.
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
        for b in [input, xn1, h2, xn2, out, dOutput, dXn, dH2] { b.reserve(n * c.dim) }
        for b in [invRms1, invRms2] { b.reserve(n) }
        for b in [q, att, dAtt, dQ] { b.reserve(n * c.qDim) }
        for b in [k, v, dK, dV] { b.reserve(n * c.kvDim) }
        for b in [gate, up, act, dAct, dUp] { b.reserve(n * c.hiddenDim) }
        projectionGradient.reserve(max(c.qDim, c.kvDim) * c.dim)
        if probabilities { probs.reserve(TrainingAttention.probabilityCount(sequences: s, tokens: t, config: c)) }
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
    /// workspace's `output` from a batch of the same shape (it is read before `output` is written).
    func forward(_ w: BalconyWeightPointers, input x: UnsafePointer<Float>, sequences s: Int, tokens t: Int,
                 backward: Bool = true) {
        precondition(s > 0 && t > 0, "empty batch")
        reserve(sequences: s, tokens: t, probabilities: backward)
        canBackward = backward
        let c = config, n = s * t, dim = c.dim, hidden = c.hiddenDim
        do {
            input.pointer.update(from: x, count: n * dim)
            TrainingKernels.rmsNorm(x, weight: w.attentionNorm, out: xn1.pointer, invRms: invRms1.pointer,
                                    rows: n, n: dim, eps: c.normEps)
            BLAS.gemmNT(m: n, n: c.qDim, k: dim, a: xn1.pointer, lda: dim, b: w.wq, ldb: dim, c: q.pointer, ldc: c.qDim)
            BLAS.gemmNT(m: n, n: c.kvDim, k: dim, a: xn1.pointer, lda: dim, b: w.wk, ldb: dim, c: k.pointer, ldc: c.kvDim)
            BLAS.gemmNT(m: n, n: c.kvDim, k: dim, a: xn1.pointer, lda: dim, b: w.wv, ldb: dim, c: v.pointer, ldc: c.kvDim)
            if let b = w.bq { Kernels.addBias(q.pointer, bias: b, rows: n, n: c.qDim) }
            if let b = w.bk { Kernels.addBias(k.pointer, bias: b, rows: n, n: c.kvDim) }
            if let b = w.bv { Kernels.addBias(v.pointer, bias: b, rows: n, n: c.kvDim) }
            ropeTable!.rotate(q.pointer, rows: n, heads: c.headCount, inverse: false)
            ropeTable!.rotate(k.pointer, rows: n, heads: c.kvHeadCount, inverse: false)
            TrainingAttention.forward(q: q.pointer, k: k.pointer, v: v.pointer, probs: backward ? probs.pointer : nil, out: att.pointer,
                                      sequences: s, tokens: t, config: c)
            // h2 = x + att · Wo^T
            h2.pointer.update(from: x, count: n * dim)
            BLAS.gemmNT(m: n, n: dim, k: c.qDim, a: att.pointer, lda: c.qDim, b: w.wo, ldb: c.qDim,
                        c: h2.pointer, ldc: dim, beta: 1)
            TrainingKernels.rmsNorm(h2.pointer, weight: w.ffnNorm, out: xn2.pointer, invRms: invRms2.pointer,
                                    rows: n, n: dim, eps: c.normEps)
            BLAS.gemmNT(m: n, n: hidden, k: dim, a: xn2.pointer, lda: dim, b: w.gate, ldb: dim, c: gate.pointer, ldc: hidden)
            BLAS.gemmNT(m: n, n: hidden, k: dim, a: xn2.pointer, lda: dim, b: w.up, ldb: dim, c: up.pointer, ldc: hidden)
            TrainingKernels.swiglu(gate: gate.pointer, up: up.pointer, out: act.pointer, count: n * hidden)
            // out = h2 + act · Wd^T
            out.pointer.update(from: h2.pointer, count: n * dim)
            BLAS.gemmNT(m: n, n: dim, k: hidden, a: act.pointer, lda: hidden, b: w.down, ldb: hidden,
                        c: out.pointer, ldc: dim, beta: 1)
        }
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
        let c = config, n = rows, dim = c.dim, hidden = c.hiddenDim, qDim = c.qDim, kvDim = c.kvDim
        p.withPointers { w in
            grad.withMutablePointers { g in
                // MLP: out = h2 + (silu(xn2 Wg^T) * (xn2 Wu^T)) Wd^T
                BLAS.gemmTN(m: dim, n: hidden, k: n, a: dOut, lda: dim, b: act.pointer, ldb: hidden,
                            c: g.down, ldc: hidden, beta: 1)
                BLAS.gemmNN(m: n, n: hidden, k: dim, a: dOut, lda: dim, b: w.down, ldb: hidden, c: dAct.pointer, ldc: hidden)
                TrainingKernels.swigluBackward(gate: gate.pointer, up: up.pointer, dAct: dAct.pointer, dUp: dUp.pointer,
                                               count: n * hidden)
                BLAS.gemmTN(m: hidden, n: dim, k: n, a: dAct.pointer, lda: hidden, b: xn2.pointer, ldb: dim,
                            c: g.gate, ldc: dim, beta: 1)
                BLAS.gemmTN(m: hidden, n: dim, k: n, a: dUp.pointer, lda: hidden, b: xn2.pointer, ldb: dim,
                            c: g.up, ldc: dim, beta: 1)
                BLAS.gemmNN(m: n, n: dim, k: hidden, a: dAct.pointer, lda: hidden, b: w.gate, ldb: dim, c: dXn.pointer, ldc: dim)
                BLAS.gemmNN(m: n, n: dim, k: hidden, a: dUp.pointer, lda: hidden, b: w.up, ldb: dim,
                            c: dXn.pointer, ldc: dim, beta: 1)
                // Residual: dH2 = dOut + the ffn norm's input gradient.
                dH2.pointer.update(from: dOut, count: n * dim)
                TrainingKernels.rmsNormBackward(h2.pointer, invRms: invRms2.pointer, weight: w.ffnNorm, dOut: dXn.pointer,
                                                rows: n, n: dim, dWeight: g.ffnNorm, dX: dH2.pointer, accumulate: true)

                // Attention: h2 = x + Attn(q, k, v) Wo^T
                BLAS.gemmTN(m: dim, n: qDim, k: n, a: dH2.pointer, lda: dim, b: att.pointer, ldb: qDim,
                            c: g.wo, ldc: qDim, beta: 1)
                BLAS.gemmNN(m: n, n: qDim, k: dim, a: dH2.pointer, lda: dim, b: w.wo, ldb: qDim, c: dAtt.pointer, ldc: qDim)
                TrainingAttention.backward(q: q.pointer, k: k.pointer, v: v.pointer, probs: probs.pointer, dOut: dAtt.pointer,
                                           dQ: dQ.pointer, dK: dK.pointer, dV: dV.pointer,
                                           sequences: sequences, tokens: tokens, config: c)
                // RoPE is a rotation per position: its backward rotates by the opposite angle.
                ropeTable!.rotate(dQ.pointer, rows: n, heads: c.headCount, inverse: true)
                ropeTable!.rotate(dK.pointer, rows: n, heads: c.kvHeadCount, inverse: true)
                if let b = g.bq { TrainingKernels.addColumnSums(dQ.pointer, rows: n, n: qDim, into: b) }
                if let b = g.bk { TrainingKernels.addColumnSums(dK.pointer, rows: n, n: kvDim, into: b) }
                if let b = g.bv { TrainingKernels.addColumnSums(dV.pointer, rows: n, n: kvDim, into: b) }
                // Each projection P of the normed input x̂ ⊙ w (x̂ = x / rms) needs G = dP^T · x̂ only:
                // its weight gradient is G ⊙ w (w per column), and the attention norm's weight
                // gradient is Σ_j W_P[j][i] G[j][i]. The layer input is frozen, so the gradient
                // w.r.t. the norm's output, three more products over every row, is never formed.
                let xhat = dXn.pointer
                TrainingKernels.scaleRows(input.pointer, by: invRms1.pointer, rows: n, n: dim, out: xhat)
                let projections = [(dQ.pointer, qDim, w.wq, g.wq), (dK.pointer, kvDim, w.wk, g.wk), (dV.pointer, kvDim, w.wv, g.wv)]
                for (d, outputs, weight, gradient) in projections {
                    let gp = projectionGradient.pointer
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
    }
}
