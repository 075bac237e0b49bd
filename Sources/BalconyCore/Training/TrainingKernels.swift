import CKernels
import Foundation

/// Forward and backward kernels of the element-wise and row-wise parts of a decoder layer, for
/// training. Pointers are row-major `[rows, n]`. Forward kernels compute what the inference
/// kernels in `Kernels` compute (up to rounding: their exp and sums are vectorized) and
/// additionally keep what the backward pass needs.
enum TrainingKernels {
    /// `out[r] = x[r] * invRms[r] * weight` with `invRms[r] = 1 / sqrt(mean(x[r]^2) + eps)` saved
    /// for the backward pass. `Kernels.rmsNorm`'s arithmetic, with the sum of squares in eight lanes
    /// (C kernels in CKernels/training.c, vectorized).
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                        invRms: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float) {
        parallelChunks(rows, minimumPerThread: max(1, 16384 / n)) { range in
            balcony_rmsnorm_forward(x + range.lowerBound * n, weight, out + range.lowerBound * n,
                                    invRms + range.lowerBound, range.count, n, eps)
        }
    }

    /// Backward of `rmsNorm` given `dOut`. Adds the weight gradient into `dWeight`; when `dX` is
    /// given, writes (or, with `accumulate`, adds) the input gradient
    /// `dx = inv * (w*dy) - inv^3 * x * sum(w*dy*x) / n`.
    static func rmsNormBackward(_ x: UnsafePointer<Float>, invRms: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dOut: UnsafePointer<Float>, rows: Int, n: Int, dWeight: UnsafeMutablePointer<Float>,
                                dX: UnsafeMutablePointer<Float>?, accumulate: Bool) {
        // Weight gradient: a sum over rows, done in one fixed order so results do not depend on
        // the thread count.
        for r in 0..<rows {
            let xr = x + r * n, dy = dOut + r * n, inv = invRms[r]
            for i in 0..<n { dWeight[i] += dy[i] * xr[i] * inv }
        }
        guard let dX else { return }
        parallelChunks(rows, minimumPerThread: max(1, 16384 / n)) { range in
            let o = range.lowerBound * n
            balcony_rmsnorm_backward_input(x + o, invRms + range.lowerBound, weight, dOut + o, dX + o, range.count, n,
                                           accumulate ? 1 : 0)
        }
    }

    /// `out[r, i] = x[r, i] * scale[r]`: the norm's input divided by its rms, before the weight.
    static func scaleRows(_ x: UnsafePointer<Float>, by scale: UnsafePointer<Float>, rows: Int, n: Int,
                          out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let s = scale[r], xr = x + r * n, o = out + r * n
            for i in 0..<n { o[i] = xr[i] * s }
        }
    }

    /// `act = silu(gate) * up` over `count` values, keeping `gate` and `up` for the backward pass.
    static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        parallelChunks(count, minimumPerThread: 16384) { r in
            balcony_swiglu_forward(gate + r.lowerBound, up + r.lowerBound, out + r.lowerBound, r.count)
        }
    }

    /// Backward of `swiglu`: `dAct` becomes the gradient w.r.t. `gate` in place; `dUp` receives
    /// the gradient w.r.t. `up`. With `s = sigmoid(g)`: `d silu(g)/dg = s * (1 + g * (1 - s))`.
    static func swigluBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, dAct: UnsafeMutablePointer<Float>,
                               dUp: UnsafeMutablePointer<Float>, count: Int) {
        parallelChunks(count, minimumPerThread: 16384) { r in
            balcony_swiglu_backward(gate + r.lowerBound, up + r.lowerBound, dAct + r.lowerBound, dUp + r.lowerBound, r.count)
        }
    }

    /// `db[j] += sum_r dY[r, j]` (the gradient of a bias added to every row).
    static func addColumnSums(_ dY: UnsafePointer<Float>, rows: Int, n: Int, into db: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = dY + r * n
            for j in 0..<n { db[j] += row[j] }
        }
    }

    /// `out[i] = a[i] + b[i]`.
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        parallelChunks(count, minimumPerThread: 65536) { range in
            for i in range { out[i] = a[i] + b[i] }
        }
    }
}
