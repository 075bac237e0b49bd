import Foundation

/// Forward and backward kernels of the element-wise and row-wise parts of a decoder layer, for
/// training. Pointers are row-major `[rows, n]`. Forward kernels compute what the inference
/// kernels in `Kernels` compute and additionally keep what the backward pass needs.
enum TrainingKernels {
    /// `out[r] = x[r] * invRms[r] * weight` with `invRms[r] = 1 / sqrt(mean(x[r]^2) + eps)` saved
    /// for the backward pass. Same arithmetic as `Kernels.rmsNorm`.
    static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                        invRms: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float) {
        parallelChunks(rows, minimumPerThread: 64) { range in
            for r in range {
                let xr = x + r * n, o = out + r * n
                var ss: Float = 0
                for i in 0..<n { ss += xr[i] * xr[i] }
                let inv = 1 / (ss / Float(n) + eps).squareRoot()
                invRms[r] = inv
                for i in 0..<n { o[i] = xr[i] * inv * weight[i] }
            }
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
        parallelChunks(rows, minimumPerThread: 64) { range in
            for r in range {
                let xr = x + r * n, dy = dOut + r * n, dx = dX + r * n, inv = invRms[r]
                var s: Float = 0
                for i in 0..<n { s += weight[i] * dy[i] * xr[i] }
                let c = inv * inv * inv * s / Float(n)
                if accumulate {
                    for i in 0..<n { dx[i] += inv * weight[i] * dy[i] - c * xr[i] }
                } else {
                    for i in 0..<n { dx[i] = inv * weight[i] * dy[i] - c * xr[i] }
                }
            }
        }
    }

    /// `act = silu(gate) * up` over `count` values, keeping `gate` and `up` for the backward pass.
    static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        parallelChunks(count, minimumPerThread: 16384) { range in
            for i in range {
                let g = gate[i]
                out[i] = g / (1 + expf(-g)) * up[i]
            }
        }
    }

    /// Backward of `swiglu`: `dAct` becomes the gradient w.r.t. `gate` in place; `dUp` receives
    /// the gradient w.r.t. `up`. With `s = sigmoid(g)`: `d silu(g)/dg = s * (1 + g * (1 - s))`.
    static func swigluBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, dAct: UnsafeMutablePointer<Float>,
                               dUp: UnsafeMutablePointer<Float>, count: Int) {
        parallelChunks(count, minimumPerThread: 16384) { range in
            for i in range {
                let g = gate[i], d = dAct[i]
                let s = 1 / (1 + expf(-g))
                dUp[i] = d * g * s
                dAct[i] = d * up[i] * s * (1 + g * (1 - s))
            }
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
