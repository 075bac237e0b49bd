import CKernels
import Foundation

/// Element-wise and row-wise kernels of the decoder. Pointers are row-major `[rows, n]`.
public enum Kernels {
    /// `out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight` for each of `rows` rows of width `n`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                               rows: Int, n: Int, eps: Float) {
        for r in 0..<rows {
            let xr = x + r * n
            let o = out + r * n
            var ss: Float = 0
            for i in 0..<n { ss += xr[i] * xr[i] }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            for i in 0..<n { o[i] = xr[i] * inv * weight[i] }
        }
    }

    /// In-place softmax of `n` values.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        var m = x[0]
        for i in 1..<n where x[i] > m { m = x[i] }
        var s: Float = 0
        for i in 0..<n {
            let e = expf(x[i] - m)
            x[i] = e
            s += e
        }
        let inv = 1 / s
        for i in 0..<n { x[i] *= inv }
    }

    /// log-softmax of `n` values into `out`, computed in double for the normalizer so long
    /// vocabularies keep their precision.
    public static func logSoftmax(_ x: UnsafePointer<Float>, _ n: Int, out: UnsafeMutablePointer<Float>) {
        var m = x[0]
        for i in 1..<n where x[i] > m { m = x[i] }
        var s: Double = 0
        for i in 0..<n { s += Double(expf(x[i] - m)) }
        let lse = m + Float(log(s))
        for i in 0..<n { out[i] = x[i] - lse }
    }

    /// `gate[i] = silu(gate[i]) * up[i]` over `n` values (the SwiGLU of LLaMA's MLP), with
    /// vectorized exponentials; a prefill's rows are split over the threads.
    public static func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, _ n: Int) {
        parallelChunks(n, minimumPerThread: 1 << 15) { r in
            balcony_swiglu_forward(gate + r.lowerBound, up + r.lowerBound, gate + r.lowerBound, r.count)
        }
    }

    /// `x[i] += y[i]`.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }

    /// Adds `bias` to each of `rows` rows.
    public static func addBias(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { add(x + r * n, bias, n) }
    }

    /// `log p(tokens[i] | tokens[..<i])` for `i = 1 ..< tokens.count`, from the logits of every
    /// position (`[tokens, vocab]`, row i predicting token i + 1).
    public static func nextTokenLogProbabilities(logits: [Float], tokens: [Int], vocab: Int) -> [Float] {
        guard tokens.count >= 2 else { return [] }
        var out = [Float](repeating: 0, count: tokens.count - 1)
        var lp = [Float](repeating: 0, count: vocab)
        logits.withUnsafeBufferPointer { l in
            lp.withUnsafeMutableBufferPointer { lpb in
                for i in 1..<tokens.count {
                    logSoftmax(l.baseAddress! + (i - 1) * vocab, vocab, out: lpb.baseAddress!)
                    out[i - 1] = lpb[tokens[i]]
                }
            }
        }
        return out
    }
}
