import CKernels
import Foundation

/// Causal grouped-query attention over a layer's KV cache.
enum Attention {
    /// `out[T, qDim]` = attention of the `tokens` queries `q[T, qDim]` (positions `start ..< start+T`)
    /// over cache rows `0 ..< start+T`. `scores` holds at least `scoreCount(...)` floats.
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
        // Prefill: tasks of one head and `blockRows` queries, spread over the threads, each two
        // single-threaded SGEMMs with the causal mask between them. A block reads keys only up to
        // its last query, which skips about half of the full square's work, and a task per block
        // synchronizes the threads once per layer instead of around every small SGEMM.
        let blockRows = min(tokens, prefillBlockRows)
        let blocks = (tokens + blockRows - 1) / blockRows
        parallelTasks(c.headCount * blocks) { task, thread in
            let h = task / blocks, b0 = (task % blocks) * blockRows
            let b1 = min(tokens, b0 + blockRows)
            let kvh = h / group
            let keys = start + b1
            let s = scores + thread * blockRows * length
            BLAS.gemmNT(m: b1 - b0, n: keys, k: hd, a: q + b0 * qDim + h * hd, lda: qDim,
                        b: cache.keys + kvh * hd, ldb: kvDim, c: s, ldc: keys, alpha: scale)
            for t in b0..<b1 {
                let row = s + (t - b0) * keys
                let visible = start + t + 1
                balcony_softmax(row, visible)
                for j in visible..<keys { row[j] = 0 }
            }
            BLAS.gemmNN(m: b1 - b0, n: hd, k: keys, a: s, lda: keys,
                        b: cache.values + kvh * hd, ldb: kvDim, c: out + b0 * qDim + h * hd, ldc: qDim)
        }
    }

    /// Queries per prefill attention task.
    static let prefillBlockRows = 64

    /// Floats of `scores` that `causal` needs for a batch of `tokens` rows (one sequence or several,
    /// each of either kind) over at most `context` positions, with `threads` threads: a row per head
    /// for small batches (queried one after another), and a block of queries per thread for
    /// prefill.
    static func scoreCount(tokens: Int, context: Int, config c: LlamaConfig, threads: Int) -> Int {
        let prefill = tokens > Linear.rowInvariantLimit ? threads * min(tokens, prefillBlockRows) : 0
        return max(c.headCount, prefill) * context
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
                balcony_attend_one(q + h * hd, cache.keys + kvh * hd, cache.values + kvh * hd, kvDim, length, hd,
                                   scale, scores + h * length, out + h * hd)
            }
        }
    }
}
