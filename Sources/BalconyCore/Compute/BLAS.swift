import CKernels
import Foundation
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// The matrix products Balcony makes, all single-precision and row-major. On Linux they run on
/// Balcony's own SGEMM (`CKernels/sgemm.c`: AVX-512, AVX2 or portable kernels chosen at run time);
/// on macOS, and with `BALCONY_GEMM=system`, on the system BLAS (Accelerate, OpenBLAS). Called
/// inside `parallelTasks` (or with one thread) a product runs on the calling thread; otherwise
/// it is split over `ComputeThreads.count` threads.
public enum BLAS {
    /// Where SGEMM runs.
    public enum Backend: String, Sendable {
        /// `CKernels/sgemm.c`.
        case balcony
        /// Accelerate on macOS, OpenBLAS elsewhere.
        case system
    }

    /// Balcony's own SGEMM on Linux, where the system BLAS is Debian's OpenBLAS 0.3.21 (slower
    /// here, docs/performance.md); Accelerate on macOS. `BALCONY_GEMM=system|balcony` sets the
    /// starting value; benchmarks switch it to compare the two in one run.
    public static var backend: Backend {
        get { backendLock.lock(); defer { backendLock.unlock() }; return backendValue }
        set { backendLock.lock(); backendValue = newValue; backendLock.unlock() }
    }

    private static let backendLock = NSLock()
    nonisolated(unsafe) private static var backendValue: Backend = {
        if let name = ProcessInfo.processInfo.environment["BALCONY_GEMM"], let b = Backend(rawValue: name) { return b }
        #if canImport(Accelerate)
        return .system
        #else
        return .balcony
        #endif
    }()

    /// The SGEMM kernel in use, for `info` and `bench`: "balcony-avx2-6x16", or the system BLAS
    /// and its kernel ("OpenBLAS 0.3.21 Haswell").
    public static var kernelName: String { kernelName(backend) }

    public static func kernelName(_ backend: Backend) -> String {
        switch backend {
        case .balcony: return String(cString: balcony_sgemm_kernel_name(balcony_sgemm_default_kernel()))
        case .system:
            #if canImport(Accelerate)
            return "Accelerate"
            #else
            let config = String(cString: openblas_get_config()).split(separator: " ").prefix(2).joined(separator: " ")
            return "\(config) \(String(cString: openblas_get_corename()))"
            #endif
        }
    }

    static func setThreads(_ n: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(n))
        #endif
    }

    /// `C[m, n] = alpha * A[m, k] · B[n, k]^T + beta * C` — activations times a PyTorch-layout weight.
    @inline(__always)
    public static func gemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                              b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                              alpha: Float = 1, beta: Float = 0) {
        gemm(transA: false, transB: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
             alpha: alpha, beta: beta)
    }

    /// `C[m, n] = alpha * A[m, k] · B[k, n] + beta * C`.
    @inline(__always)
    public static func gemmNN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                              b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                              alpha: Float = 1, beta: Float = 0) {
        gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
             alpha: alpha, beta: beta)
    }

    /// `C[m, n] = alpha * A[k, m]^T · B[k, n] + beta * C` (weight gradients).
    @inline(__always)
    public static func gemmTN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                              b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                              alpha: Float = 1, beta: Float = 0) {
        gemm(transA: true, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
             alpha: alpha, beta: beta)
    }

    /// `y[rows] = W[rows, cols] · x[cols]`.
    @inline(__always)
    public static func gemv(rows: Int, cols: Int, w: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        balcony_pool_park()
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(cols), 1, w, Int32(cols), x, 1, 0, y, 1)
    }

    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        switch backend {
        case .system:
            // The pool's spinning workers would share the cores with OpenBLAS's threads.
            balcony_pool_park()
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        case .balcony:
            BalconyGEMM.run(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                            c: c, ldc: ldc, alpha: alpha, beta: beta)
        }
    }
}
