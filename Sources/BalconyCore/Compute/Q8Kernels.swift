import CKernels

/// Products with Q8_0 weights (GGML blocks: F16 scale + 32 int8). The weights are never widened
/// as a whole: decode streams each block once and multiplies it against float activations; prefill
/// widens a tile of rows at a time into a cache-sized scratch and hands it to SGEMM, so the
/// dequantization cost is spread over every token of the prompt.
enum Q8Kernels {
    /// Rows widened per SGEMM tile in prefill (tile = rows x cols floats).
    static let tileRows = 64

    /// Decode: `y[rows] = W · x`, split over threads by rows.
    static func gemv(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let data = w.data
        let cols = w.cols
        parallelChunks(w.rows, minimumPerThread: 64) { range in
            balcony_q8_0_gemv(data, cols, x, y, range.lowerBound, range.upperBound)
        }
    }

    /// Widens rows `lo..<hi` of `w` into `out` (row-major, cols per row).
    static func dequantizeRows(_ w: WeightMatrix, _ lo: Int, _ hi: Int, into out: UnsafeMutablePointer<Float>) {
        let cols = w.cols, data = w.data
        parallelChunks(hi - lo, minimumPerThread: 8) { range in
            balcony_q8_0_dequantize_rows(data, cols, out + range.lowerBound * cols, lo + range.lowerBound, lo + range.upperBound)
        }
    }

    /// Prefill: `y[T, rows] = x[T, cols] · W^T`, one SGEMM per tile of widened rows.
    static func gemm(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        let cols = w.cols
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * cols)
        defer { tile.deallocate() }
        var lo = 0
        while lo < w.rows {
            let hi = min(w.rows, lo + tileRows)
            dequantizeRows(w, lo, hi, into: tile)
            BLAS.gemmNT(m: tokens, n: hi - lo, k: cols, a: x, lda: cols, b: tile, ldb: cols, c: y + lo, ldc: w.rows)
            lo = hi
        }
    }
}

/// `y = x · W^T` for any weight type: the one entry point the model uses for linear layers.
public enum Linear {
    /// `y[tokens, W.rows] = x[tokens, W.cols] · W^T`.
    public static func forward(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        switch w.type {
        case .f32:
            if tokens == 1 {
                GEMV.f32(w, x: x, y: y)
            } else {
                BLAS.gemmNT(m: tokens, n: w.rows, k: w.cols, a: x, lda: w.cols, b: w.f32, ldb: w.cols, c: y, ldc: w.rows)
            }
        case .q8_0:
            if tokens == 1 {
                Q8Kernels.gemv(w, x: x, y: y)
            } else {
                Q8Kernels.gemm(w, x: x, tokens: tokens, y: y)
            }
        }
    }
}
