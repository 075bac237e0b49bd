import Foundation

/// Causal grouped-query attention over a layer's KV cache.
enum Attention {
    /// `out[T, qDim]` = attention of the `tokens` queries `q[T, qDim]` (positions `start ..< start+T`)
    /// over cache rows `0 ..< start+T`. `scores` holds at least `max(T, heads) * (start+T)` floats.
    static func causal(q: UnsafePointer<Float>, cache: LayerKVCache, start: Int, tokens: Int,
                       config c: LlamaConfig, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let hd = c.headDim
        let length = start + tokens
        let group = c.headCount / c.kvHeadCount
        let scale = 1 / Float(hd).squareRoot()
        let qDim = c.qDim, kvDim = c.kvDim
        if tokens <= Linear.rowInvariantLimit {
            // Decode and small batches: each query exactly as a one-token decode step computes it, so
            // a speculative verification or a short chunk gives bit-identical results to decoding.
            for t in 0..<tokens {
                attendOne(q: q + t * qDim, cache: cache, length: start + t + 1, config: c, scores: scores, out: out + t * qDim)
            }
            return
        }
        // Prefill: per head, two SGEMMs with the causal mask applied between them.
        for h in 0..<c.headCount {
            let kvh = h / group
            BLAS.gemmNT(m: tokens, n: length, k: hd, a: q + h * hd, lda: qDim,
                        b: cache.keys + kvh * hd, ldb: kvDim, c: scores, ldc: length, alpha: scale)
            parallelChunks(tokens, minimumPerThread: 16) { rows in
                for t in rows {
                    let row = scores + t * length
                    let visible = start + t + 1
                    Kernels.softmax(row, visible)
                    for j in visible..<length { row[j] = 0 }
                }
            }
            BLAS.gemmNN(m: tokens, n: hd, k: length, a: scores, lda: length,
                        b: cache.values + kvh * hd, ldb: kvDim, c: out + h * hd, ldc: qDim)
        }
    }

    /// One query per head over cache rows `0 ..< length`; heads run in parallel, each with its own
    /// row of `scores` (`heads * length` floats).
    private static func attendOne(q: UnsafePointer<Float>, cache: LayerKVCache, length: Int, config c: LlamaConfig,
                                  scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let hd = c.headDim, kvDim = c.kvDim
        let group = c.headCount / c.kvHeadCount
        let scale = 1 / Float(hd).squareRoot()
        parallelChunks(c.headCount, minimumPerThread: 1) { heads in
            for h in heads {
                let kvh = h / group
                let qh = q + h * hd
                let s = scores + h * length
                for j in 0..<length {
                    let kj = cache.keys + j * kvDim + kvh * hd
                    var dot: Float = 0
                    for i in 0..<hd { dot += qh[i] * kj[i] }
                    s[j] = dot * scale
                }
                Kernels.softmax(s, length)
                let o = out + h * hd
                for i in 0..<hd { o[i] = 0 }
                for j in 0..<length {
                    let vj = cache.values + j * kvDim + kvh * hd
                    let p = s[j]
                    for i in 0..<hd { o[i] += p * vj[i] }
                }
            }
        }
    }
}
