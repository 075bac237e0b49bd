import CKernels

/// Balcony's single-threaded SGEMM (`CKernels/sgemm.c`) spread over the threads. Inside
/// `parallelTasks` (prefill's row split, training's per-exit tasks, attention blocks) every
/// product runs on its own thread as it is; elsewhere a large product is cut into one share of C
/// per thread.
enum BalconyGEMM {
    /// Products below this many multiply-adds stay on one thread: about 50 microseconds of work,
    /// where waking the pool's workers would cost a noticeable share.
    static let parallelMinimum = 1 << 22

    static func run(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                    b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        let threads = ComputeThreads.count
        guard threads > 1, !SerialKernels.active, m * n * k >= parallelMinimum else {
            balcony_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        // Each thread packs all of the operand it shares with the others: all of A when C's
        // columns are split, all of B when its rows are. Splitting the longer side shares the
        // smaller operand (k x min(m, n)). Columns in multiples of 32 and rows in multiples of 12
        // keep every kernel's tiles whole except at the end.
        let byColumns = n >= m || m < 24 * threads
        let count = byColumns ? n : m, unit = byColumns ? 32 : 12
        let parts = min(threads, max(1, count / unit))
        guard parts > 1 else {
            balcony_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let step = ((count + parts - 1) / parts + unit - 1) / unit * unit
        parallelTasks(parts) { p in
            let lo = min(count, p * step), hi = min(count, lo + step)
            guard lo < hi else { return }
            if byColumns {
                // Column j of op(B) is row j of B (transB) or column j of B.
                let bShare = transB ? b + lo * ldb : b + lo
                balcony_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, hi - lo, k, alpha, a, lda, bShare, ldb, beta, c + lo, ldc)
            } else {
                // Row i of op(A) is column i of A (transA) or row i of A.
                let aShare = transA ? a + lo : a + lo * lda
                balcony_sgemm(transA ? 1 : 0, transB ? 1 : 0, hi - lo, n, k, alpha, aShare, lda, b, ldb, beta, c + lo * ldc, ldc)
            }
        }
    }
}
