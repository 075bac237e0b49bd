import Foundation
import Testing
import CKernels
@testable import BalconyCore

/// Balcony's SGEMM (`CKernels/sgemm.c`) against a double-precision reference: every kernel this
/// CPU runs on shapes that are not multiples of any tile or block, and the products Balcony runs
/// (prefill projections and head, training's weight-gradient and input-gradient products) through
/// the same paths the model uses.
@Suite struct GEMMTests {
    /// A row-major matrix stored with a leading dimension wider than its rows, so that a kernel
    /// that reads or writes past the logical width shows up.
    struct Matrix {
        var rows: Int, cols: Int, ld: Int
        var values: [Float]

        init(rows: Int, cols: Int, seed: UInt64, padding: Int = 3, fill: Float? = nil) {
            self.rows = rows; self.cols = cols; ld = cols + padding
            var g = TinyModels.LCG(state: seed)
            let count = rows * (cols + padding)
            if let fill { values = [Float](repeating: fill, count: count) } else { values = g.values(count, scale: 1) }
        }

        subscript(i: Int, j: Int) -> Float { values[i * ld + j] }
    }

    enum Layout: CaseIterable, CustomStringConvertible {
        case nt, nn, tn, tt
        var transA: Bool { self == .tn || self == .tt }
        var transB: Bool { self == .nt || self == .tt }
        var description: String { "\(transA ? "T" : "N")\(transB ? "T" : "N")" }
    }

    /// A and B for op(A)[m, k] · op(B)[k, n] in `layout`.
    static func operands(_ layout: Layout, m: Int, n: Int, k: Int, seed: UInt64) -> (a: Matrix, b: Matrix) {
        (layout.transA ? Matrix(rows: k, cols: m, seed: seed) : Matrix(rows: m, cols: k, seed: seed),
         layout.transB ? Matrix(rows: n, cols: k, seed: seed + 1, padding: 5) : Matrix(rows: k, cols: n, seed: seed + 1, padding: 5))
    }

    /// op(A) · op(B) at each of `entries` in double precision, with the sum of its terms' magnitudes.
    static func reference(_ a: Matrix, _ b: Matrix, _ layout: Layout, k: Int, at entries: [(Int, Int)]) -> [(sum: Double, magnitude: Double)] {
        a.values.withUnsafeBufferPointer { av in
            b.values.withUnsafeBufferPointer { bv in
                // Element (i, p) of op(A) is av[i * ai + p * ap]; (p, j) of op(B) is bv[p * bp + j * bj].
                let (ai, ap) = layout.transA ? (1, a.ld) : (a.ld, 1), (bp, bj) = layout.transB ? (1, b.ld) : (b.ld, 1)
                return entries.map { i, j in
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        let t = Double(av[i * ai + p * ap]) * Double(bv[p * bp + j * bj])
                        sum += t
                        magnitude += abs(t)
                    }
                    return (sum, magnitude)
                }
            }
        }
    }

    /// Checks C's entries `at` against alpha · `reference` + beta · C0: each within 2e-6 of the
    /// sum of the magnitudes of its terms (float rounding over k terms, far below any wrong or
    /// missing term), and C's padding columns untouched.
    static func expectProduct(_ c: Matrix, _ c0: Matrix, _ reference: [(sum: Double, magnitude: Double)],
                              alpha: Float, beta: Float, at entries: [(Int, Int)], _ what: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        var worst = 0.0, failures = 0
        for ((i, j), r) in zip(entries, reference) {
            let old = beta == 0 ? 0 : Double(beta) * Double(c0[i, j])
            let expected = Double(alpha) * r.sum + old
            let error = abs(Double(c[i, j]) - expected) / (abs(Double(alpha)) * r.magnitude + abs(old) + 1e-30)
            if !(error <= 2e-6) { failures += 1 }
            if !(error <= worst) { worst = error }
        }
        #expect(failures == 0, "\(what): \(failures) of \(entries.count) entries off, worst relative error \(worst)",
                sourceLocation: sourceLocation)
        for i in 0..<c.rows {
            for j in c.cols..<c.ld where c[i, j].bitPattern != c0[i, j].bitPattern {
                Issue.record("\(what): padding C[\(i), \(j)] written", sourceLocation: sourceLocation)
                return
            }
        }
    }

    static func allEntries(_ m: Int, _ n: Int) -> [(Int, Int)] { (0..<m).flatMap { i in (0..<n).map { (i, $0) } } }

    /// Corners, the last row and column (edge tiles) and a scatter of entries in between.
    static func sampledEntries(_ m: Int, _ n: Int, count: Int = 300) -> [(Int, Int)] {
        var g = TinyModels.LCG(state: UInt64(m * 31 + n))
        var out = [(0, 0), (0, n - 1), (m - 1, 0), (m - 1, n - 1)]
        for t in 0..<count {
            let r = min(m - 1, Int((g.next() + 1) / 2 * Float(m))), c = min(n - 1, Int((g.next() + 1) / 2 * Float(n)))
            out.append(t % 3 == 0 ? (m - 1, c) : t % 3 == 1 ? (r, n - 1) : (r, c))
        }
        return out
    }

    static var kernels: [Int32] {
        [BALCONY_SGEMM_PORTABLE, BALCONY_SGEMM_AVX2, BALCONY_SGEMM_AVX512, BALCONY_SGEMM_AVX512_SHAPE_ON_AVX2]
            .map { Int32($0) }.filter { balcony_sgemm_kernel_available($0) != 0 }
    }

    @Test func theDefaultKernelIsTheWidestAvailable() {
        let names = Self.kernels.map { String(cString: balcony_sgemm_kernel_name($0)) }
        #expect(names.contains("balcony-portable-6x8"))
        let chosen = balcony_sgemm_default_kernel()
        #expect(balcony_sgemm_kernel_available(chosen) != 0)
        if balcony_sgemm_kernel_available(Int32(BALCONY_SGEMM_AVX512)) != 0 { #expect(chosen == BALCONY_SGEMM_AVX512) }
        else if balcony_sgemm_kernel_available(Int32(BALCONY_SGEMM_AVX2)) != 0 { #expect(chosen == BALCONY_SGEMM_AVX2) }
        #expect(balcony_sgemm_kernel_name(99) == nil)
        #expect(balcony_sgemm_with(99, 0, 0, 1, 1, 1, 1, nil, 1, nil, 1, 0, nil, 1) == 0)
    }

    /// Every kernel, every layout, rows 1, 7, 17, 255 (one row, under a tile, just over two tiles,
    /// over one block of rows), widths and depths off every vector, tile and block size (300 >
    /// KC: two blocks of depth; 300 columns: A packed rather than read in place), with beta 0 (C
    /// filled with NaN, which must not leak in), 1 and another value, and alpha 1 or not.
    @Test(arguments: Layout.allCases)
    func awkwardShapesMatchDoublePrecision(layout: Layout) throws {
        for m in [1, 7, 17, 255] {
            for (n, k) in [(1, 1), (13, 5), (33, 31), (100, 300), (47, 257), (300, 70)] {
                let (a, b) = Self.operands(layout, m: m, n: n, k: k, seed: UInt64(m * 1000 + n * 10 + k))
                let entries = Self.allEntries(m, n), reference = Self.reference(a, b, layout, k: k, at: entries)
                for kernel in Self.kernels {
                    let name = String(cString: balcony_sgemm_kernel_name(kernel))
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (1, -0.25)] {
                        let c0 = Matrix(rows: m, cols: n, seed: 7, padding: 7, fill: beta == 0 ? .nan : nil)
                        var c = c0
                        let ok = c.values.withUnsafeMutableBufferPointer { cp in
                            balcony_sgemm_with(kernel, layout.transA ? 1 : 0, layout.transB ? 1 : 0, m, n, k, alpha,
                                               a.values, a.ld, b.values, b.ld, beta, cp.baseAddress, c.ld)
                        }
                        #expect(ok == 1)
                        Self.expectProduct(c, c0, reference, alpha: alpha, beta: beta, at: entries,
                                           "\(name) \(layout) \(m)x\(n)x\(k) alpha \(alpha) beta \(beta)")
                    }
                }
            }
        }
    }

    @Test func emptyDepthAndZeroAlphaScaleC() {
        for kernel in Self.kernels {
            var c: [Float] = [1, 2, 3, 4]
            let a: [Float] = [5, 6], b: [Float] = [7, 8]
            #expect(balcony_sgemm_with(kernel, 0, 1, 2, 2, 0, 1, a, 1, b, 1, 0.5, &c, 2) == 1)
            #expect(c == [0.5, 1, 1.5, 2])
            #expect(balcony_sgemm_with(kernel, 0, 1, 2, 2, 1, 0, a, 1, b, 1, 0, &c, 2) == 1)
            #expect(c == [0, 0, 0, 0])
        }
    }

    /// Prefill's projections and head over a 512-token prompt on a 110M LLaMA (dim 768, hidden
    /// 2048, vocabulary 32000), the way prefill runs them: weight rows split over the threads,
    /// each thread one single-threaded product.
    @Test(arguments: [(768, 768), (2048, 768), (768, 2048), (32000, 768)])
    func prefillShapesMatchDoublePrecision(rows: Int, cols: Int) throws {
        guard BLAS.backend == .balcony else { return }
        let tokens = 512
        let x = Matrix(rows: tokens, cols: cols, seed: 1, padding: 0)
        let w = Matrix(rows: rows, cols: cols, seed: 2, padding: 0)
        let c0 = Matrix(rows: tokens, cols: rows, seed: 3, padding: 0, fill: .nan)
        var y = c0
        let weight = WeightMatrix.owned(rows: rows, cols: cols, values: w.values)
        let entries = Self.sampledEntries(tokens, rows), reference = Self.reference(x, w, .nt, k: cols, at: entries)
        for threads in Set([1, 2, ComputeThreads.count]) {
            let saved = ComputeThreads.count
            ComputeThreads.set(threads)
            defer { ComputeThreads.set(saved) }
            y.values.withUnsafeMutableBufferPointer { PrefillGEMM.f32(weight, x: x.values, tokens: tokens, y: $0.baseAddress!) }
            Self.expectProduct(y, c0, reference, alpha: 1, beta: 0, at: entries,
                               "prefill \(tokens)x\(rows)x\(cols), \(threads) threads")
        }
    }

    /// The training step's products at 512 rows of a 110M model: weight gradients (TN,
    /// accumulated with beta 1), input gradients (NN) and the head's backward product (NN over the
    /// 32000-long vocabulary), through `BLAS` with the products split over the threads.
    @Test(arguments: [("TN", 768, 2048, 512), ("TN", 2048, 768, 512), ("NN", 512, 2048, 768), ("NN", 512, 768, 2048),
                      ("NN", 512, 768, 32000), ("NT", 512, 2048, 768)])
    func trainingShapesMatchDoublePrecision(kind: String, m: Int, n: Int, k: Int) throws {
        let layout: Layout = kind == "TN" ? .tn : kind == "NN" ? .nn : .nt
        let (a, b) = Self.operands(layout, m: m, n: n, k: k, seed: UInt64(m + n + k))
        let beta: Float = layout == .tn ? 1 : 0
        let c0 = Matrix(rows: m, cols: n, seed: 4, padding: 2, fill: beta == 0 ? .nan : nil)
        let entries = Self.sampledEntries(m, n), reference = Self.reference(a, b, layout, k: k, at: entries)
        for threads in Set([1, ComputeThreads.count]) {
            let saved = ComputeThreads.count
            ComputeThreads.set(threads)
            defer { ComputeThreads.set(saved) }
            var c = c0
            c.values.withUnsafeMutableBufferPointer { cp in
                let out = cp.baseAddress!
                switch layout {
                case .tn: BLAS.gemmTN(m: m, n: n, k: k, a: a.values, lda: a.ld, b: b.values, ldb: b.ld, c: out, ldc: c.ld, beta: beta)
                case .nn: BLAS.gemmNN(m: m, n: n, k: k, a: a.values, lda: a.ld, b: b.values, ldb: b.ld, c: out, ldc: c.ld, beta: beta)
                default: BLAS.gemmNT(m: m, n: n, k: k, a: a.values, lda: a.ld, b: b.values, ldb: b.ld, c: out, ldc: c.ld, beta: beta)
                }
            }
            Self.expectProduct(c, c0, reference, alpha: 1, beta: beta, at: entries,
                               "\(kind) \(m)x\(n)x\(k), \(threads) threads")
        }
    }

    @Test func fmaPeakIsMeasured() {
        #expect([4, 8, 16].contains(balcony_fma_lanes()))
        #expect(balcony_fma_chains(1000).isFinite)
        #expect(MachineCeilings.fmaPeak(threads: 1, repeats: 1) > 0)
    }
}
