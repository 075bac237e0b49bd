import CKernels
import Foundation
import Testing
@testable import BalconyCore

/// Finite-difference checks of each backward kernel on its own: RMSNorm, RoPE in both pairings,
/// causal GQA attention over several sequences, and SwiGLU. Each loss is `sum(c * f(x))` for a
/// random `c`, so the analytic gradient is the kernel's backward applied to `c`.
@Suite struct TrainingKernelTests {
    static func config(style: RopeStyle = .halfSplit) -> LlamaConfig {
        LlamaConfig(dim: 32, hiddenDim: 40, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 48,
                    contextLength: 16, ropeStyle: style)
    }

    func dot(_ a: [Double], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * Double($1.1) } }

    @Test func rmsNormGradients() {
        var rnd = TestRandom(seed: 11)
        let rows = 3, n = 16
        let x = rnd.floats(rows * n, scale: 2), w = rnd.floats(n, scale: 0.3).map { 1 + $0 }, c = rnd.floats(rows * n)
        var out = [Float](repeating: 0, count: rows * n), inv = [Float](repeating: 0, count: rows)
        var dW = [Float](repeating: 0, count: n), dX = out
        TrainingKernels.rmsNorm(x, weight: w, out: &out, invRms: &inv, rows: rows, n: n, eps: 1e-5)
        var plain = out
        Kernels.rmsNorm(x, weight: w, out: &plain, rows: rows, n: n, eps: 1e-5)
        // The same function; the vectorized sum of squares rounds differently.
        #expect(zip(out, plain).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }, "training RMSNorm computes what the inference kernel computes")
        TrainingKernels.rmsNormBackward(x, invRms: inv, weight: w, dOut: c, rows: rows, n: n, dWeight: &dW, dX: &dX,
                                        accumulate: false)
        let xd = x.map(Double.init), wd = w.map(Double.init)
        var check = GradientCheck()
        check.check("x", analytic: dX, indices: Array(0..<(rows * n))) { i in
            TrainingReference.centralDifference(xd, i) { dot(TrainingReference.rmsNorm($0, wd, rows: rows, n: n, eps: 1e-5), c) }
        }
        check.check("weight", analytic: dW, indices: Array(0..<n)) { i in
            TrainingReference.centralDifference(wd, i) { dot(TrainingReference.rmsNorm(xd, $0, rows: rows, n: n, eps: 1e-5), c) }
        }
        check.expectPassed()
    }

    @Test(arguments: [RopeStyle.interleaved, .halfSplit])
    func ropeForwardAndBackward(style: RopeStyle) {
        let c = Self.config(style: style)
        var rnd = TestRandom(seed: 12)
        let sequences = 2, tokens = 5, rows = sequences * tokens, width = c.qDim
        let x = rnd.floats(rows * width), cot = rnd.floats(rows * width)
        let rope = RotaryEmbedding(config: c)
        let table = RopeTable(rope: rope, positions: tokens)
        var rotated = x
        table.rotate(&rotated, rows: rows, heads: c.headCount, inverse: false)
        // Each sequence starts at position 0: the same as the inference rotation per sequence.
        var expected = x
        expected.withUnsafeMutableBufferPointer { b in
            for s in 0..<sequences { rope.apply(b.baseAddress! + s * tokens * width, tokens: tokens, heads: c.headCount, start: 0) }
        }
        #expect(rotated == expected)
        var back = rotated
        table.rotate(&back, rows: rows, heads: c.headCount, inverse: true)
        #expect(zip(back, x).allSatisfy { abs($0 - $1) < 1e-6 }, "the inverse rotation undoes the rotation")

        var grad = cot
        table.rotate(&grad, rows: rows, heads: c.headCount, inverse: true)
        let xd = x.map(Double.init)
        var check = GradientCheck()
        var sample = TestRandom(seed: 15)
        check.check("x", analytic: grad, indices: sample.indices(rows * width, count: 80)) { i in
            TrainingReference.centralDifference(xd, i) {
                dot(TrainingReference.rope($0, rows: rows, tokens: tokens, heads: c.headCount, config: c), cot)
            }
        }
        check.expectPassed()
    }

    /// Head sizes 8 and 6 take the two kernels (tiled for multiples of 8, plain otherwise); 21
    /// tokens make three tiles of queries, the last one partial, against up to three key blocks.
    @Test(arguments: [(8, 5), (8, 21), (16, 12), (6, 11)])
    func causalGQAAttentionGradients(headDim: Int, tokens: Int) {
        let c = LlamaConfig(dim: 4 * headDim, hiddenDim: 8, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 8,
                            contextLength: 128)
        var rnd = TestRandom(seed: 13)
        let sequences = 2, rows = sequences * tokens
        let q = rnd.floats(rows * c.qDim, scale: 1.5), k = rnd.floats(rows * c.kvDim, scale: 1.5)
        let v = rnd.floats(rows * c.kvDim), cot = rnd.floats(rows * c.qDim)
        var probs = [Float](repeating: 0, count: TrainingAttention.probabilityCount(sequences: sequences, tokens: tokens, config: c))
        var out = [Float](repeating: 0, count: rows * c.qDim)
        TrainingAttention.forward(q: q, k: k, v: v, probs: &probs, out: &out, sequences: sequences, tokens: tokens, config: c)
        let qd = q.map(Double.init), kd = k.map(Double.init), vd = v.map(Double.init)
        let reference = TrainingReference.attention(q: qd, k: kd, v: vd, sequences: sequences, tokens: tokens, config: c)
        #expect(zip(out, reference).allSatisfy { abs(Double($0) - $1) < 1e-5 })
        // Without kept probabilities (the teacher's forward) the output is the same to the bit.
        var unkept = [Float](repeating: 0, count: rows * c.qDim)
        TrainingAttention.forward(q: q, k: k, v: v, probs: nil, out: &unkept, sequences: sequences, tokens: tokens, config: c)
        #expect(unkept == out)

        var dQ = q, dK = k, dV = v
        TrainingAttention.backward(q: q, k: k, v: v, probs: probs, dOut: cot, dQ: &dQ, dK: &dK, dV: &dV,
                                   sequences: sequences, tokens: tokens, config: c)
        func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
            dot(TrainingReference.attention(q: q, k: k, v: v, sequences: sequences, tokens: tokens, config: c), cot)
        }
        var check = GradientCheck()
        let samples = 32     // entries per tensor, plus two random directions that cover all of them
        check.check("q", analytic: dQ, indices: rnd.indices(q.count, count: samples)) { i in
            TrainingReference.centralDifference(qd, i) { loss($0, kd, vd) }
        }
        check.check("k", analytic: dK, indices: rnd.indices(k.count, count: samples)) { i in
            TrainingReference.centralDifference(kd, i) { loss(qd, $0, vd) }
        }
        check.check("v", analytic: dV, indices: rnd.indices(v.count, count: samples)) { i in
            TrainingReference.centralDifference(vd, i) { loss(qd, kd, $0) }
        }
        for _ in 0..<2 {
            check.checkDirection("q", analytic: dQ, direction: rnd.floats(q.count).map(Double.init), x: qd) { loss($0, kd, vd) }
            check.checkDirection("k", analytic: dK, direction: rnd.floats(k.count).map(Double.init), x: kd) { loss(qd, $0, vd) }
            check.checkDirection("v", analytic: dV, direction: rnd.floats(v.count).map(Double.init), x: vd) { loss(qd, kd, $0) }
        }
        check.expectPassed()
        // Causality: queries of the first 4 positions of sequence 0 depend on no later key or
        // value and on nothing of sequence 1 (the analytic gradient says so exactly).
        var cot0 = [Float](repeating: 0, count: rows * c.qDim)
        for i in 0..<(4 * c.qDim) { cot0[i] = 1 }
        TrainingAttention.backward(q: q, k: k, v: v, probs: probs, dOut: cot0, dQ: &dQ, dK: &dK, dV: &dV,
                                   sequences: sequences, tokens: tokens, config: c)
        #expect(dK[(4 * c.kvDim)...].allSatisfy { $0 == 0 } && dV[(4 * c.kvDim)...].allSatisfy { $0 == 0 })
    }

    @Test func swigluGradients() {
        var rnd = TestRandom(seed: 14)
        let n = 64
        let g = rnd.floats(n, scale: 4), u = rnd.floats(n, scale: 2), cot = rnd.floats(n)
        var act = [Float](repeating: 0, count: n)
        TrainingKernels.swiglu(gate: g, up: u, out: &act, count: n)
        var plain = g
        Kernels.swiglu(gate: &plain, up: u, n)
        #expect(zip(act, plain).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        var dG = cot, dU = act
        TrainingKernels.swigluBackward(gate: g, up: u, dAct: &dG, dUp: &dU, count: n)
        let gd = g.map(Double.init), ud = u.map(Double.init)
        func loss(_ g: [Double], _ u: [Double]) -> Double { dot(zip(g, u).map { TrainingReference.silu($0) * $1 }, cot) }
        var check = GradientCheck()
        check.check("gate", analytic: dG, indices: Array(0..<n)) { i in TrainingReference.centralDifference(gd, i) { loss($0, ud) } }
        check.check("up", analytic: dU, indices: Array(0..<n)) { i in TrainingReference.centralDifference(ud, i) { loss(gd, $0) } }
        check.expectPassed()
    }

    /// The vectorizable exp of the C kernels against libm over the whole range the kernels use,
    /// and its clamping at the ends.
    @Test func kernelExpMatchesLibm() {
        var worst: Double = 0
        var x: Float = -87
        while x <= 88 {
            let e = Double(balcony_exp(x)), ref = exp(Double(x))
            worst = max(worst, abs(e - ref) / ref)
            x += 0.0137
        }
        #expect(worst < 3e-7, "relative error \(worst)")
        #expect(balcony_exp(0) == 1)
        #expect(balcony_exp(-1000) < 1e-37 && balcony_exp(-1000) >= 0)
        #expect(balcony_exp(1000).isFinite)
    }

    /// The checker itself rejects a gradient that is 1 % off, so the checks above can fail.
    @Test func gradientCheckRejectsASmallError() {
        var check = GradientCheck()
        check.check("x", analytic: [1.01, 2, -3], indices: [0, 1, 2]) { i in [1.0, 2.0, -3.0][i] }
        #expect(!check.failures.isEmpty)
        var exact = GradientCheck()
        exact.check("x", analytic: [1, 2, -3], indices: [0, 1, 2]) { i in [1.0, 2.0, -3.0][i] }
        #expect(exact.failures.isEmpty)
    }
}
