import CKernels

/// Prefill's products with weights that are not F32 (Q8_0, F16, BF16): each thread widens a tile
/// of its share of the rows at a time into a scratch and hands it to SGEMM, so the widening is
/// spread over every token of the prompt and the whole matrix is never held as F32.
enum WidenedGEMM {
    /// Rows widened per SGEMM tile: about 4M floats (16 MiB), a multiple of 64. Measured on a
    /// 2048x768 matrix and 512 tokens (one thread): 64-row tiles reach 37 GFLOP/s, 512-row tiles
    /// 52, the whole matrix 57, because OpenBLAS packs the activations again for every call.
    static func tileRows(cols: Int) -> Int { max(64, (1 << 22) / max(cols, 1) / 64 * 64) }

    /// `y[T, rows] = x[T, cols] · W^T`, one SGEMM per tile of widened rows; each thread widens and
    /// multiplies its own share of the rows (see `PrefillGEMM`).
    static func gemm(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        let cols = w.cols, tileRows = Self.tileRows(cols: cols)
        PrefillGEMM.splitRows(w.rows) { rows in
            // Kept by the thread between calls: a fresh 16 MiB allocation is a fresh mapping whose
            // pages fault in on every product.
            let tile = balcony_thread_scratch(min(tileRows, rows.count) * cols)!
            var lo = rows.lowerBound
            while lo < rows.upperBound {
                let hi = min(rows.upperBound, lo + tileRows)
                w.widenRows(lo, hi, into: tile)
                BLAS.gemmNT(m: tokens, n: hi - lo, k: cols, a: x, lda: cols, b: tile, ldb: cols, c: y + lo, ldc: w.rows)
                lo = hi
            }
        }
    }
}
