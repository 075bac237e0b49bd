import Foundation

/// One product's speed in `balcony bench --gemm`.
public struct GEMMShapeSpeed: Codable, Sendable {
    /// What the product is in the model ("prefill gate/up", "train dW down", ...).
    public var name: String
    /// NT (activations times a PyTorch-layout weight), NN or TN.
    public var layout: String
    public var m: Int, n: Int, k: Int
    public var backend: String
    public var kernel: String
    /// Median over the repeats.
    public var gflops: Double
    /// `gflops` over the FMA peak at the same thread count.
    public var peak_fraction: Double
}

/// SGEMM at the shapes a model's prefill and training step multiply, on each backend, as the model
/// runs them: prefill's products split by weight rows over the threads (`PrefillGEMM`), training's
/// through `BLAS` (split over the threads by `BalconyGEMM`, or OpenBLAS's own threads).
public enum GEMMBenchmark {
    struct Shape {
        var name: String, layout: String, m: Int, n: Int, k: Int
    }

    /// Prefill of `tokens` tokens (projections and the head over the batch) and a training slice of
    /// `tokens` rows (weight gradients TN, input gradients NN, the head's backward product).
    static func shapes(_ c: LlamaConfig, tokens t: Int) -> [Shape] {
        [Shape(name: "prefill q/o", layout: "NT", m: t, n: c.qDim, k: c.dim),
         Shape(name: "prefill gate/up", layout: "NT", m: t, n: c.hiddenDim, k: c.dim),
         Shape(name: "prefill down", layout: "NT", m: t, n: c.dim, k: c.hiddenDim),
         Shape(name: "prefill head", layout: "NT", m: t, n: c.vocabSize, k: c.dim),
         Shape(name: "train dW gate/up", layout: "TN", m: c.hiddenDim, n: c.dim, k: t),
         Shape(name: "train dW down", layout: "TN", m: c.dim, n: c.hiddenDim, k: t),
         Shape(name: "train dX gate/up", layout: "NN", m: t, n: c.dim, k: c.hiddenDim),
         Shape(name: "train dX down", layout: "NN", m: t, n: c.hiddenDim, k: c.dim),
         Shape(name: "train head backward", layout: "NN", m: t, n: c.dim, k: c.vocabSize)]
    }

    /// Every shape on every backend, alternating backends shape by shape so that a change in the
    /// machine's load falls on both; returns the FMA peak (FLOP/s at `ComputeThreads.count`
    /// threads) with the rows.
    public static func run(config c: LlamaConfig, tokens: Int, repeats: Int,
                           backends: [BLAS.Backend] = [.balcony, .system]) -> (peak: Double, rows: [GEMMShapeSpeed]) {
        let shapes = shapes(c, tokens: tokens)
        let largest = shapes.map { max($0.m * $0.k, $0.k * $0.n, $0.m * $0.n) }.max()!
        let a = UnsafeMutablePointer<Float>.allocate(capacity: largest), b = UnsafeMutablePointer<Float>.allocate(capacity: largest)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: largest)
        defer { a.deallocate(); b.deallocate(); out.deallocate() }
        for i in 0..<largest { a[i] = Float(i % 7) * 0.01; b[i] = Float(i % 5) * 0.01; out[i] = 0 }
        let peak = MachineCeilings.fmaPeak(threads: ComputeThreads.count)
        let saved = BLAS.backend
        defer { BLAS.backend = saved }
        var rows: [GEMMShapeSpeed] = []
        for s in shapes {
            for backend in backends {
                BLAS.backend = backend
                var times: [Double] = []
                for r in 0...repeats {
                    let t0 = Date()
                    multiply(s, a: a, b: b, c: out)
                    if r > 0 { times.append(Date().timeIntervalSince(t0)) }  // the first warms caches and buffers
                }
                let rate = 2 * Double(s.m) * Double(s.n) * Double(s.k) / MachineCeilings.median(times)
                rows.append(GEMMShapeSpeed(name: s.name, layout: s.layout, m: s.m, n: s.n, k: s.k, backend: backend.rawValue,
                                           kernel: BLAS.kernelName(backend), gflops: rate / 1e9, peak_fraction: rate / peak))
            }
        }
        return (peak, rows)
    }

    static func multiply(_ s: Shape, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        switch s.layout {
        case "NT":
            PrefillGEMM.splitRows(s.n) { rows in
                BLAS.gemmNT(m: s.m, n: rows.count, k: s.k, a: a, lda: s.k, b: b + rows.lowerBound * s.k, ldb: s.k,
                            c: c + rows.lowerBound, ldc: s.n)
            }
        case "TN":
            BLAS.gemmTN(m: s.m, n: s.n, k: s.k, a: a, lda: s.m, b: b, ldb: s.n, c: c, ldc: s.n, beta: 1)
        default:
            BLAS.gemmNN(m: s.m, n: s.n, k: s.k, a: a, lda: s.k, b: b, ldb: s.n, c: c, ldc: s.n)
        }
    }
}
