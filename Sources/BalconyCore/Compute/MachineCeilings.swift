import CKernels
import Foundation

/// The machine's own limits, measured in the same run as a benchmark so that figures can be
/// reported as fractions of them: memory read bandwidth (what bounds decode), the CPU's
/// multiply-add peak and SGEMM throughput (what bound prefill and training).
public enum MachineCeilings {
    /// The multiply-add peak in FLOP/s with `threads` threads running ten independent FMA chains
    /// each on the widest vectors the CPU has (`CKernels/fma_peak.c`), median of `repeats`.
    public static func fmaPeak(threads: Int, repeats: Int = 5) -> Double {
        let lanes = Int(balcony_fma_lanes())
        // About 10 ms a thread at 100 GFLOP/s per core.
        let iterations = (1 << 26) / lanes
        let sinks = UnsafeMutablePointer<Float>.allocate(capacity: threads)
        defer { sinks.deallocate() }
        var times: [Double] = []
        for _ in 0...repeats {
            let t = Date()
            parallelTasks(threads) { task in sinks[task] = balcony_fma_chains(iterations) }
            times.append(Date().timeIntervalSince(t))
        }
        times.removeFirst()  // wakes the workers and the vector units
        return Double(threads * iterations * 20 * lanes) / median(times)
    }

    /// `fmaPeak` for 1 ... `ComputeThreads.count` threads.
    public static func fmaPeaks(repeats: Int = 5) -> [Double] {
        (1...max(1, ComputeThreads.count)).map { fmaPeak(threads: $0, repeats: repeats) }
    }

    /// What the FMA loop runs on: "AVX-512", "AVX2" or "portable C".
    public static var fmaVectors: String {
        switch balcony_fma_lanes() {
        case 16: "AVX-512"
        case 8: "AVX2"
        default: "portable C"
        }
    }

    /// Read bandwidth in bytes/s: the median of `repeats` passes summing a buffer far larger than
    /// the caches, split over `ComputeThreads.count` threads like the decode kernels.
    public static func readBandwidth(megabytes: Int = 256, repeats: Int = 5) -> Double {
        let count = megabytes * 1_048_576 / 4
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buf.deallocate() }
        parallelChunks(count, minimumPerThread: 1 << 20) { r in
            for i in r { buf[i] = Float(i & 7) }
        }
        var times: [Double] = []
        var sink: Float = 0
        for _ in 0..<repeats {
            let partial = UnsafeMutablePointer<Float>.allocate(capacity: 64)
            partial.initialize(repeating: 0, count: 64)
            let t = Date()
            let chunks = ComputeThreads.count
            let per = (count + chunks - 1) / chunks / 16 * 16
            parallelChunks(chunks) { ts in
                for c in ts {
                    let lo = c * per, hi = min(count, lo + per)
                    let raw = UnsafeRawPointer(buf)
                    var a = SIMD16<Float>(), b = SIMD16<Float>()
                    var i = lo
                    while i + 32 <= hi {
                        a += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        b += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
                        i += 32
                    }
                    partial[c] = (a + b).sum()
                }
            }
            times.append(Date().timeIntervalSince(t))
            for c in 0..<chunks { sink += partial[c] }
            partial.deallocate()
        }
        if sink == .infinity { print("") }  // keeps the sums alive
        return Double(count * 4) / median(times)
    }

    /// SGEMM rate in FLOP/s for `C[m, n] = A[m, k] · B[n, k]^T`, median of `repeats` runs.
    public static func gemmFlops(m: Int, n: Int, k: Int, repeats: Int = 5) -> Double {
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: n * k)
        var c = [Float](repeating: 0, count: m * n)
        var times: [Double] = []
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemmNT(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: k, c: cp.baseAddress!, ldc: n)
                    for _ in 0..<repeats {
                        let t = Date()
                        BLAS.gemmNT(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: k, c: cp.baseAddress!, ldc: n)
                        times.append(Date().timeIntervalSince(t))
                    }
                }
            }
        }
        return 2 * Double(m) * Double(n) * Double(k) / median(times)
    }

    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
