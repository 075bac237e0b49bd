import Foundation
import Testing
@testable import BalconyCore

/// The chunked exit loss against the Double reference: values, finite-difference gradients
/// (temperature != 1 and a cross-entropy term), chunking, Q8_0 heads, and the whole balcony
/// (layer + exit norm + head + KL) end to end.
@Suite struct TrainingExitLossTests {
    static func config(vocab: Int = 48, style: RopeStyle = .halfSplit, bias: Bool = false) -> LlamaConfig {
        LlamaConfig(architecture: bias ? "qwen2" : "llama", dim: 32, hiddenDim: 40, layerCount: 3, headCount: 4,
                    kvHeadCount: 2, vocabSize: vocab, contextLength: 16, ropeStyle: style, attentionBias: bias)
    }

    /// A random problem: teacher rows, exit rows, exit norms, head.
    struct Problem {
        let config: LlamaConfig
        let rows: Int
        var teacher: [Float]
        var hidden: [[Float]]
        var parameters: [BalconyParameters]
        let head: WeightMatrix
        let targets: [Int]

        init(config c: LlamaConfig, rows: Int, exits: Int, seed: UInt64) {
            var rnd = TestRandom(seed: seed)
            config = c
            self.rows = rows
            teacher = rnd.floats(rows * c.dim, scale: 1.5)
            hidden = (0..<exits).map { _ in rnd.floats(rows * c.dim, scale: 3) }
            parameters = (0..<exits).map { e in rnd.parameters(c, exit: e + 1) }
            head = .owned(rows: c.vocabSize, cols: c.dim, values: rnd.floats(c.vocabSize * c.dim, scale: 0.4))
            targets = (0..<rows).map { r in r % 3 == 1 ? -1 : (r * 17 + 5) % c.vocabSize }
        }

        func run(_ options: DistillationOptions, head: WeightMatrix? = nil) -> (ExitLossResult, [[Float]], [[Float]]) {
            let loss = ExitLoss(config: config)
            var grads = parameters.map { $0.zeros() }
            var dHidden = hidden.map { [Float](repeating: .nan, count: $0.count) }
            let result = teacher.withUnsafeBufferPointer { t in
                withPointers(hidden) { h in
                    withMutablePointers(&dHidden) { d in
                        loss.lossAndGradients(teacher: t.baseAddress!, rows: rows, exitHidden: h, parameters: parameters,
                                              head: head ?? self.head, targets: targets, options: options,
                                              hiddenGradients: d, gradients: &grads)
                    }
                }
            }
            return (result, dHidden, grads.map(\.norm))
        }

        func referenceLoss(hidden: [[Double]]? = nil, norms: [[Double]]? = nil, temperature: Double, weight: Double,
                           targets: [Int]? = nil) -> Double {
            TrainingReference.exitLoss(
                teacher: teacher.map(Double.init), exitHidden: hidden ?? self.hidden.map { $0.map(Double.init) },
                exitNorms: norms ?? parameters.map { $0.norm.map(Double.init) }, head: self.head.toFloats().map(Double.init),
                rows: rows, config: config, temperature: temperature, crossEntropyWeight: weight, targets: targets ?? self.targets)
        }
    }

    // T != 1 takes separate paths for the plain distribution; T = 1 reuses the tempered one.
    @Test(arguments: [(2.0, 0.5), (1.0, 0.5)])
    func valuesAndGradientsWithTemperatureAndCrossEntropy(tau: Double, w: Double) {
        let p = Problem(config: Self.config(), rows: 7, exits: 2, seed: 31)
        let (result, dHidden, dNorm) = p.run(DistillationOptions(temperature: Float(tau), crossEntropyWeight: Float(w), chunkRows: 3))
        let reference = p.referenceLoss(temperature: tau, weight: w)
        #expect(abs(result.loss - reference) < 1e-6 * abs(reference), "\(result.loss) vs \(reference)")
        // The plain KL (T = 1) and the cross-entropy per exit, as reported.
        for e in 0..<2 {
            let one = Problem.Slice(p, exit: e)
            let kl = one.problem.referenceLoss(temperature: 1, weight: 0)
            let ceSum = one.problem.referenceLoss(temperature: 1, weight: 1) - kl
            #expect(abs(result.klDivergence[e] - kl) < 1e-6 * kl)
            #expect(abs(result.crossEntropy[e] - ceSum * 7 / 5) < 1e-5, "CE is averaged over the 5 rows with a target")
        }
        #expect(result.targetCount == 5)

        var rnd = TestRandom(seed: 32)
        var check = GradientCheck()
        let hd = p.hidden.map { $0.map(Double.init) }, nd = p.parameters.map { $0.norm.map(Double.init) }
        for e in 0..<2 {
            check.check("hidden \(e)", analytic: dHidden[e], indices: rnd.indices(dHidden[e].count, count: 16)) { i in
                TrainingReference.centralDifference(hd[e], i) { x in
                    var h = hd
                    h[e] = x
                    return p.referenceLoss(hidden: h, temperature: tau, weight: w)
                }
            }
            check.check("norm \(e)", analytic: dNorm[e], indices: rnd.indices(p.config.dim, count: 12)) { i in
                TrainingReference.centralDifference(nd[e], i) { x in
                    var n = nd
                    n[e] = x
                    return p.referenceLoss(norms: n, temperature: tau, weight: w)
                }
            }
        }
        check.expectPassed()
    }

    /// Chunk sizes change nothing but rounding.
    @Test func chunkingDoesNotChangeTheResult() {
        let p = Problem(config: Self.config(), rows: 9, exits: 3, seed: 33)
        let (whole, dWhole, nWhole) = p.run(DistillationOptions(temperature: 1.5, crossEntropyWeight: 0.2))
        for rows in [1, 4] {
            let (r, d, n) = p.run(DistillationOptions(temperature: 1.5, crossEntropyWeight: 0.2, chunkRows: rows))
            #expect(abs(r.loss - whole.loss) < 1e-6 * whole.loss)
            #expect(zip(d.joined(), dWhole.joined()).allSatisfy { abs($0 - $1) < 1e-7 })
            #expect(zip(n.joined(), nWhole.joined()).allSatisfy { abs($0 - $1) < 1e-6 })
        }
    }

    /// A Q8_0 head (several widened tiles) gives what F32 gives on its dequantized values.
    @Test func q8HeadMatchesDequantizedF32() {
        let p = Problem(config: Self.config(vocab: 300), rows: 5, exits: 2, seed: 34)
        let q8 = TinyModels.quantize(p.head)
        let f32 = WeightMatrix.owned(rows: q8.rows, cols: q8.cols, values: q8.toFloats())
        let options = DistillationOptions(temperature: 1, crossEntropyWeight: 0.1, chunkRows: 2)
        let (rq, dq, nq) = p.run(options, head: q8)
        let (rf, df, nf) = p.run(options, head: f32)
        #expect(abs(rq.loss - rf.loss) < 1e-6 * rf.loss)
        let scale = df.joined().map(abs).max()!
        #expect(zip(dq.joined(), df.joined()).allSatisfy { abs($0 - $1) < 1e-5 * scale })
        #expect(zip(nq.joined(), nf.joined()).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// An exit whose normalized hidden state is the teacher's has (almost) zero loss and gradient.
    @Test func identicalDistributionsHaveNoLoss() {
        var p = Problem(config: Self.config(), rows: 4, exits: 1, seed: 35)
        p.parameters[0].norm = .init(repeating: 1, count: p.config.dim)
        let h = p.hidden[0]
        p.teacher = TrainingReference.rmsNorm(h.map(Double.init), .init(repeating: 1, count: p.config.dim), rows: 4,
                                              n: p.config.dim, eps: 0).map(Float.init)
        let (r, d, _) = p.run(DistillationOptions(temperature: 3))
        #expect(abs(r.loss) < 1e-6 && r.klDivergence[0] < 1e-6)
        #expect(d[0].allSatisfy { abs($0) < 1e-6 })
    }

    /// Without targets the cross-entropy weight has no effect and nothing is counted.
    @Test func lossWithoutGradientsOrTargets() {
        let p = Problem(config: Self.config(), rows: 6, exits: 2, seed: 36)
        let loss = ExitLoss(config: p.config)
        let r = p.teacher.withUnsafeBufferPointer { t in
            withPointers(p.hidden) { h in
                loss.loss(teacher: t.baseAddress!, rows: 6, exitHidden: h, parameters: p.parameters, head: p.head,
                          options: DistillationOptions(crossEntropyWeight: 1))
            }
        }
        let reference = p.referenceLoss(temperature: 1, weight: 1, targets: [Int](repeating: -1, count: 6))
        #expect(abs(r.loss - reference) < 1e-6 * reference)
        #expect(r.targetCount == 0 && r.crossEntropy == [0, 0])
        #expect(r.exitLosses == r.klDivergence)
    }
}

extension TrainingExitLossTests.Problem {
    /// The same problem restricted to one exit.
    struct Slice {
        var problem: TrainingExitLossTests.Problem
        init(_ p: TrainingExitLossTests.Problem, exit e: Int) {
            problem = p
            problem.hidden = [p.hidden[e]]
            problem.parameters = [p.parameters[e]]
        }
    }
}

/// Base addresses of several arrays at once, valid inside `body`.
func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func go(_ i: Int, _ acc: [UnsafePointer<Float>]) -> R {
        if i == arrays.count { return body(acc) }
        return arrays[i].withUnsafeBufferPointer { go(i + 1, acc + [$0.baseAddress!]) }
    }
    return go(0, [])
}

/// Mutable base addresses of several arrays at once, valid inside `body`.
func withMutablePointers<R>(_ arrays: inout [[Float]], _ body: ([UnsafeMutablePointer<Float>]) -> R) -> R {
    func go(_ i: Int, _ arrays: inout [[Float]], _ acc: [UnsafeMutablePointer<Float>]) -> R {
        if i == arrays.count { return body(acc) }
        var a = arrays[i]
        let r = a.withUnsafeMutableBufferPointer { b in go(i + 1, &arrays, acc + [b.baseAddress!]) }
        arrays[i] = a
        return r
    }
    return go(0, &arrays, [])
}
