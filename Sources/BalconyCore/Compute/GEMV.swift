import CKernels

/// Matrix-vector products for decode, where every weight is read once per token and memory
/// bandwidth is the limit: rows are split over threads, and each thread walks its rows one after
/// another as one sequential stream (`CKernels/gemv_f32.c`: AVX2/FMA, or portable C), or the
/// matrix's lossless packed copy when it has one (`PackedF32Matrix`): 12 % fewer bytes, the same
/// results bit for bit.
enum GEMV {
    /// `ys[j][m, rows_j] = x[m, cols] · W_j^T` for a few rows of activations and F32 matrices
    /// sharing them, in one parallel pass; each row's result is the same as a one-row call.
    static func f32(_ ws: [WeightMatrix], x: UnsafePointer<Float>, tokens m: Int, ys: [UnsafeMutablePointer<Float>]) {
        let cols = ws[0].cols
        SmallBatch.runBlocks(rows: ws.map(\.rows)) { j, r in
            if let packed = ws[j].packed {
                // Each row decoded once for all the activation rows.
                packed.gemv(x: x, tokens: m, y: ys[j], rows: r)
            } else {
                for i in 0..<m { balcony_f32_gemv(ws[j].f32, cols, x + i * cols, ys[j] + i * ws[j].rows, r.lowerBound, r.upperBound) }
            }
        }
    }
}

extension GEMV {
    /// The same for F16 or BF16 matrices kept in 16 bits (`CKernels/half_weights.c`): half the
    /// bytes of F32, and bit for bit the results of the F32 kernel on the widened weights.
    static func half(_ ws: [WeightMatrix], x: UnsafePointer<Float>, tokens m: Int, ys: [UnsafeMutablePointer<Float>]) {
        let cols = ws[0].cols
        SmallBatch.run(rows: ws.map(\.rows), tokens: m) { j, i, r in
            balcony_half_gemv(ws[j].halfBits, ws[j].bf16Flag, cols, x + i * cols, ys[j] + i * ws[j].rows, r.lowerBound, r.upperBound)
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
    /// Rows per work item handed out to the threads as they come free: 128 rows of 768 floats
    /// are 384 KiB, a long enough stream for the prefetcher, and a 768-wide layer has dozens.
    static let dynamicChunkRows = 128

    /// Calls `body(j, i, rows)` for every matrix `j` (with `rows[j]` rows), activation row `i < tokens`
    /// and block of that matrix's rows. The matrices' rows are split over threads together, so
    /// products that share their input (q, k and v; gate and up) cost one fork and join, which at
    /// decode is a sizeable share of a small matrix's time.
    static func run(rows: [Int], tokens: Int, _ body: (Int, Int, Range<Int>) -> Void) {
        runBlocks(rows: rows) { j, block in
            for i in 0..<tokens { body(j, i, block) }
        }
    }

    /// Calls `body(j, block)` for every block of rows of every matrix `j`, on the threads as `run`
    /// does; the body passes every activation row over the block itself.
    static func runBlocks(rows: [Int], _ body: (Int, Range<Int>) -> Void) {
        let total = rows.reduce(0, +)
        let chunk = total < 64 * ComputeThreads.count ? total : dynamicChunkRows
        parallelDynamic(total, chunk: chunk) { range in
            var offset = 0
            for (j, n) in rows.enumerated() {
                var lo = max(range.lowerBound, offset) - offset
                let end = min(range.upperBound, offset + n) - offset
                while lo < end {
                    let hi = min(end, lo + blockRows)
                    body(j, lo..<hi)
                    lo = hi
                }
                offset += n
            }
        }
    }
}
