import CKernels

/// Prefill's matrix products split by weight rows over Balcony's threads, each calling
/// single-threaded SGEMM on its share. OpenBLAS's own threading synchronizes inside every call
/// and, while its threads wait, yields the core in a loop: about a tenth of a 110M model's
/// prefill here went to the scheduler. One split per call, on the pool that decode uses, avoids
/// both.
enum PrefillGEMM {
    /// Calls `body(rows)` for one contiguous share of `0 ..< count` per thread (shares are
    /// multiples of 16 rows), or once for all rows inside `parallelTasks`.
    static func splitRows(_ count: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(ComputeThreads.count, max(1, count / 16))
        guard threads > 1, !SerialKernels.active else {
            body(0..<count)
            return
        }
        let share = (count + threads - 1) / threads
        let step = (share + 15) / 16 * 16
        parallelTasks(threads) { p in
            let lo = min(count, p * step), hi = min(count, lo + step)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// `y[T, rows] = x[T, cols] · W^T` for an F32 matrix.
    static func f32(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        let cols = w.cols
        splitRows(w.rows) { rows in
            BLAS.gemmNT(m: tokens, n: rows.count, k: cols, a: x, lda: cols, b: w.f32 + rows.lowerBound * cols, ldb: cols,
                        c: y + rows.lowerBound, ldc: w.rows)
        }
    }
}

/// `y = x · W^T` for any weight type: the one entry point the model uses for linear layers.
public enum Linear {
    /// Calls with at most this many rows compute every row with exactly the arithmetic of a one-row
    /// call, so a sequence's logits do not depend on what else is in its batch (batched serving,
    /// speculative verification). Larger calls go to SGEMM, whose rounding depends on the shape.
    public static let rowInvariantLimit = SmallBatch.rowLimit

    /// The same product with float activations at every row count (quantized weights widened,
    /// never the activations rounded to int8; F16 and BF16 products are float products already):
    /// the function training differentiates, whose backward pass multiplies by the same widened
    /// weights.
    public static func forwardFloatActivations(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        switch w.type {
        case .f32, .f16, .bf16: forward(w, x: x, tokens: tokens, y: y)
        default: gemm(w, x: x, tokens: tokens, y: y)
        }
    }

    /// `y[tokens, W.rows] = x[tokens, W.cols] · W^T`.
    public static func forward(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        forward([w], x: x, tokens: tokens, y: [y])
    }

    /// `y[j] = x · W_j^T` for matrices that share their input (q, k and v; gate and up). Small
    /// batches of one weight type run as one parallel pass over all the matrices' rows.
    public static func forward(_ ws: [WeightMatrix], x: UnsafePointer<Float>, tokens: Int, y ys: [UnsafeMutablePointer<Float>]) {
        precondition(ws.count == ys.count && ws.allSatisfy { $0.cols == ws[0].cols }, "matrices share their input")
        guard tokens <= rowInvariantLimit else {
            for (w, y) in zip(ws, ys) { gemm(w, x: x, tokens: tokens, y: y) }
            return
        }
        // Quantized matrices of several types share a pass when their activations are quantized
        // alike (Q4_K and Q6_K both take Q8_K blocks, as in a Q4_K_M file's q/k/v).
        let dotType = ws[0].type.quantized?.dotType
        guard ws.allSatisfy({ $0.type == ws[0].type || (dotType != nil && $0.type.quantized?.dotType == dotType) }) else {
            for (w, y) in zip(ws, ys) { forward([w], x: x, tokens: tokens, y: [y]) }
            return
        }
        switch ws[0].type {
        case .f32: GEMV.f32(ws, x: x, tokens: tokens, ys: ys)
        case .f16, .bf16: GEMV.half(ws, x: x, tokens: tokens, ys: ys)
        default: QuantKernels.gemv(ws, x: x, tokens: tokens, ys: ys)
        }
    }

    /// Beyond the small-batch limit: SGEMM (other types through widened tiles).
    private static func gemm(_ w: WeightMatrix, x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>) {
        switch w.type {
        case .f32: PrefillGEMM.f32(w, x: x, tokens: tokens, y: y)
        default: WidenedGEMM.gemm(w, x: x, tokens: tokens, y: y)
        }
    }
}
