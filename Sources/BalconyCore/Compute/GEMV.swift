import CKernels

/// Matrix-vector products for decode, where every weight is read once per token and memory
/// bandwidth is the limit: rows are split over threads, and each thread walks its rows one after
/// another as one sequential stream (`CKernels/gemv_f32.c`: AVX2/FMA, or portable C).
enum GEMV {
    /// `y[m, rows] = x[m, cols] · W^T` for a few rows of activations; each row's result is the
    /// same as a one-row call (`SmallBatch`).
    static func f32(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens m: Int, y: UnsafeMutablePointer<Float>) {
        let p = w.f32, cols = w.cols, rows = w.rows
        SmallBatch.run(rows: rows, tokens: m) { i, r in
            balcony_f32_gemv(p, cols, x + i * cols, y + i * rows, r.lowerBound, r.upperBound)
        }
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
