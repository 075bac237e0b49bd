import Foundation

/// Causal grouped-query attention over a batch of independent sequences, with its backward pass.
/// Rows are `[sequences * tokens, width]`; each sequence attends within itself, query `t` to keys
/// `0 ... t`. Per sequence and head the forward is two SGEMMs around a masked softmax, as in
/// `Attention.causal`; the attention probabilities are kept for the backward pass.
enum TrainingAttention {
    /// `out[N, qDim]` from rotated `q[N, qDim]`, `k[N, kvDim]`, `v[N, kvDim]`; fills
    /// `probs[sequences, heads, tokens, tokens]` (zero above the diagonal).
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                        sequences: Int, tokens T: Int, config c: LlamaConfig) {
        let hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim
        let group = c.headCount / c.kvHeadCount
        let scale = 1 / Float(hd).squareRoot()
        for s in 0..<sequences {
            let qs = q + s * T * qDim, ks = k + s * T * kvDim, vs = v + s * T * kvDim
            for h in 0..<c.headCount {
                let kvh = h / group
                let p = probs + (s * c.headCount + h) * T * T
                BLAS.gemmNT(m: T, n: T, k: hd, a: qs + h * hd, lda: qDim, b: ks + kvh * hd, ldb: kvDim,
                            c: p, ldc: T, alpha: scale)
                parallelChunks(T, minimumPerThread: 32) { rows in
                    for t in rows {
                        let row = p + t * T
                        Kernels.softmax(row, t + 1)
                        for j in (t + 1)..<T { row[j] = 0 }
                    }
                }
                BLAS.gemmNN(m: T, n: hd, k: T, a: p, lda: T, b: vs + kvh * hd, ldb: kvDim,
                            c: out + s * T * qDim + h * hd, ldc: qDim)
            }
        }
    }

    /// Gradients w.r.t. the rotated queries, keys and values from `dOut[N, qDim]`. `dQ` is
    /// overwritten; `dK` and `dV` are overwritten too (the heads of a group are summed into them).
    /// `probs` is consumed: it holds the score gradients afterwards. `scratch` holds `tokens^2`.
    static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         probs: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                         dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
                         scratch dP: UnsafeMutablePointer<Float>, sequences: Int, tokens T: Int, config c: LlamaConfig) {
        let hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim
        let group = c.headCount / c.kvHeadCount
        let scale = 1 / Float(hd).squareRoot()
        dK.update(repeating: 0, count: sequences * T * kvDim)
        dV.update(repeating: 0, count: sequences * T * kvDim)
        for s in 0..<sequences {
            let qs = q + s * T * qDim, ks = k + s * T * kvDim, vs = v + s * T * kvDim
            let dOs = dOut + s * T * qDim, dQs = dQ + s * T * qDim
            let dKs = dK + s * T * kvDim, dVs = dV + s * T * kvDim
            for h in 0..<c.headCount {
                let kvh = h / group
                let p = probs + (s * c.headCount + h) * T * T
                // dP = dO · V^T;  dV += P^T · dO
                BLAS.gemmNT(m: T, n: T, k: hd, a: dOs + h * hd, lda: qDim, b: vs + kvh * hd, ldb: kvDim, c: dP, ldc: T)
                BLAS.gemmTN(m: T, n: hd, k: T, a: p, lda: T, b: dOs + h * hd, ldb: qDim,
                            c: dVs + kvh * hd, ldc: kvDim, beta: 1)
                // Softmax backward, row by row: dS = P * (dP - sum_j P dP); written over P.
                parallelChunks(T, minimumPerThread: 32) { rows in
                    for t in rows {
                        let pr = p + t * T, dr = dP + t * T
                        var dot: Float = 0
                        for j in 0...t { dot += pr[j] * dr[j] }
                        for j in 0...t { pr[j] *= dr[j] - dot }
                    }
                }
                // dQ = scale * dS · K;  dK += scale * dS^T · Q  (masked entries of dS are zero).
                BLAS.gemmNN(m: T, n: hd, k: T, a: p, lda: T, b: ks + kvh * hd, ldb: kvDim,
                            c: dQs + h * hd, ldc: qDim, alpha: scale)
                BLAS.gemmTN(m: T, n: hd, k: T, a: p, lda: T, b: qs + h * hd, ldb: qDim,
                            c: dKs + kvh * hd, ldc: kvDim, alpha: scale, beta: 1)
            }
        }
    }
}
