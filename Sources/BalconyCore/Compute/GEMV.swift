/// Matrix-vector products for decode, where every weight is read once per token and memory
/// bandwidth is the limit: rows are split over threads, four rows share each load of `x`, and
/// eight-wide SIMD accumulators keep the loads streaming.
enum GEMV {
    /// `y[r] = W[r, :] · x` for `r` in `rows`; W is F32 `[*, cols]` row-major.
    @inline(__always)
    static func f32Rows(_ w: UnsafePointer<Float>, cols: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let vec = cols / 16 * 16
        let xr = UnsafeRawPointer(x)
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            let w0 = UnsafeRawPointer(w + r * cols), w1 = UnsafeRawPointer(w + (r + 1) * cols)
            let w2 = UnsafeRawPointer(w + (r + 2) * cols), w3 = UnsafeRawPointer(w + (r + 3) * cols)
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var i = 0
            while i < vec {
                let xv = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                a0 += w0.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * xv
                a1 += w1.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * xv
                a2 += w2.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * xv
                a3 += w3.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * xv
                i += 16
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while i < cols {
                let xv = x[i]
                s0 += w[r * cols + i] * xv
                s1 += w[(r + 1) * cols + i] * xv
                s2 += w[(r + 2) * cols + i] * xv
                s3 += w[(r + 3) * cols + i] * xv
                i += 1
            }
            y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3
            r += 4
        }
        while r < rows.upperBound {
            let wr = UnsafeRawPointer(w + r * cols)
            var a = SIMD16<Float>()
            var i = 0
            while i < vec {
                a += wr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                i += 16
            }
            var s = a.sum()
            while i < cols { s += w[r * cols + i] * x[i]; i += 1 }
            y[r] = s
            r += 1
        }
    }

    /// `y[m, rows] = x[m, cols] · W^T` for a few rows of activations; each row's result is the
    /// same as a one-row call (`SmallBatch`).
    static func f32(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens m: Int, y: UnsafeMutablePointer<Float>) {
        let p = w.f32, cols = w.cols, rows = w.rows
        SmallBatch.run(rows: rows, tokens: m) { i, r in f32Rows(p, cols: cols, x: x + i * cols, y: y + i * rows, rows: r) }
    }
}

/// The schedule of every small-batch product (`Linear.rowInvariantLimit` rows or fewer): weight rows
/// are split over threads, and each thread walks its rows in blocks small enough to stay in cache
/// while every activation row passes over them, so the weights stream from memory once per call
/// however many rows there are. Each output element comes from one call of a row kernel over one
/// activation row, which is what makes the result independent of the batch.
enum SmallBatch {
    static let rowLimit = 16
    /// Weight rows per cache block: 16 rows of 768 floats is 48 KiB.
    static let blockRows = 16

    /// Calls `body(i, rows)` for every activation row `i < tokens` and block of weight rows.
    @inline(__always)
    static func run(rows: Int, tokens: Int, _ body: (Int, Range<Int>) -> Void) {
        parallelChunks(rows, minimumPerThread: 64) { range in
            var lo = range.lowerBound
            while lo < range.upperBound {
                let hi = min(range.upperBound, lo + blockRows)
                for i in 0..<tokens { body(i, lo..<hi) }
                lo = hi
            }
        }
    }
}
