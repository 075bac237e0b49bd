import CKernels
import Foundation
import Testing
@testable import BalconyCore

/// The balcony layer's training forward against the inference `DecoderLayer.forward`, and its
/// backward against finite differences of the Double reference, for every parameter tensor.
@Suite struct TrainingLayerTests {
    static func config(style: RopeStyle, bias: Bool) -> LlamaConfig {
        LlamaConfig(architecture: bias ? "qwen2" : "llama", dim: 32, hiddenDim: 40, layerCount: 3, headCount: 4,
                    kvHeadCount: 2, vocabSize: 48, contextLength: 16, ropeStyle: style, attentionBias: bias)
    }

    static let cases: [(RopeStyle, Bool)] = [(.interleaved, false), (.halfSplit, true)]

    @Test(arguments: [(RopeStyle.interleaved, false), (.halfSplit, false), (.interleaved, true), (.halfSplit, true)])
    func forwardMatchesDecoderLayer(style: RopeStyle, bias: Bool) {
        let c = Self.config(style: style, bias: bias)
        var rnd = TestRandom(seed: 21)
        let p = rnd.parameters(c)
        let sequences = 3, tokens = 7, n = sequences * tokens
        let x = rnd.floats(n * c.dim, scale: 2)
        let ws = BalconyLayerWorkspace(config: c)
        ws.forward(p, input: x, sequences: sequences, tokens: tokens)
        let trained = Array(UnsafeBufferPointer(start: ws.output, count: n * c.dim))

        // The inference path, one sequence at a time from position 0.
        var expected = x
        let weights = p.layerWeights(config: c), rope = RotaryEmbedding(config: c), scratch = Scratch()
        scratch.ensure(tokens: tokens, config: c, context: tokens)
        expected.withUnsafeMutableBufferPointer { b in
            for s in 0..<sequences {
                let cache = LayerKVCache(capacity: tokens, kvDim: c.kvDim)
                DecoderLayer.forward(weights, x: b.baseAddress! + s * tokens * c.dim, tokens: tokens, start: 0,
                                     cache: cache, rope: rope, config: c, scratch: scratch)
            }
        }
        let diff = zip(trained, expected).map { abs($0 - $1) }.max()!
        #expect(diff < 1e-5, "max difference \(diff)")
        // And the Double reference agrees (it is what the gradient checks differentiate).
        let reference = TrainingReference.layer(TrainingReference.tensors(p), x: x.map(Double.init),
                                                sequences: sequences, tokens: tokens, config: c)
        #expect(zip(trained, reference).allSatisfy { abs(Double($0) - $1) < 1e-4 })
    }

    /// Slices of the batch (one sequence each here) through forward and backward give the same
    /// output, and the same gradients up to the order of their sums, as the whole batch at once.
    @Test(arguments: cases)
    func slicedBatchMatchesWholeBatch(style: RopeStyle, bias: Bool) {
        let c = Self.config(style: style, bias: bias)
        var rnd = TestRandom(seed: 23)
        let p = rnd.parameters(c)
        let sequences = 3, tokens = 9, n = sequences * tokens
        let x = rnd.floats(n * c.dim, scale: 2), cot = rnd.floats(n * c.dim)
        func run(slice: Int) -> (output: [Float], gradients: [Float]) {
            let ws = BalconyLayerWorkspace(config: c)
            ws.sequencesPerSliceOverride = slice
            ws.forward(p, input: x, sequences: sequences, tokens: tokens)
            var grad = p.zeros()
            ws.backward(p, outputGradient: cot, accumulatingInto: &grad)
            var flat: [Float] = []
            grad.visitTensors { _, g in flat += g }
            return (Array(UnsafeBufferPointer(start: ws.output, count: n * c.dim)), flat)
        }
        let whole = run(slice: sequences), sliced = run(slice: 1)
        #expect(zip(whole.output, sliced.output).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($0)) })
        #expect(whole.gradients.count == sliced.gradients.count)
        let scale = whole.gradients.map(abs).max()!
        let diff = zip(whole.gradients, sliced.gradients).map { abs($0 - $1) }.max()!
        #expect(scale > 0 && diff <= 1e-5 * scale, "max difference \(diff) of gradients up to \(scale)")
    }

    @Test(arguments: cases)
    func layerGradientsMatchFiniteDifferences(style: RopeStyle, bias: Bool) {
        let c = Self.config(style: style, bias: bias)
        var rnd = TestRandom(seed: 22)
        let p = rnd.parameters(c)
        let sequences = 2, tokens = 5, n = sequences * tokens
        let x = rnd.floats(n * c.dim, scale: 2), cot = rnd.floats(n * c.dim)
        let ws = BalconyLayerWorkspace(config: c)
        ws.forward(p, input: x, sequences: sequences, tokens: tokens)
        var grad = p.zeros()
        ws.backward(p, outputGradient: cot, accumulatingInto: &grad)

        let xd = x.map(Double.init)
        let tensors = TrainingReference.tensors(p)
        var check = GradientCheck()
        grad.visitTensors { name, g in
            guard name != TrainingReference.exitNorm else {
                #expect(g.allSatisfy { $0 == 0 }, "the layer leaves the exit norm's gradient to the loss")
                return
            }
            check.check(name, analytic: g, indices: rnd.indices(g.count, count: 6)) { i in
                TrainingReference.centralDifference(tensors[name]!, i) { t in
                    var ts = tensors
                    ts[name] = t
                    let out = TrainingReference.layer(ts, x: xd, sequences: sequences, tokens: tokens, config: c)
                    return zip(out, cot).reduce(0) { $0 + $1.0 * Double($1.1) }
                }
            }
        }
        check.expectPassed()
        #expect(bias == (grad.bq != nil))

        // Backward accumulates: a second forward and backward add the same gradient again.
        var twice = grad
        ws.forward(p, input: x, sequences: sequences, tokens: tokens)
        ws.backward(p, outputGradient: cot, accumulatingInto: &twice)
        twice.visitTensors { name, t in
            var once: [Float] = []
            grad.visitTensors { n2, g in if n2 == name { once = g } }
            #expect(zip(t, once).allSatisfy { abs($0 - 2 * $1) <= 1e-6 * max(1, abs($1)) }, "\(name)")
        }
    }

    /// The portable build of the C kernels computes what the AVX2 build computes (the machine's
    /// default), through a whole layer forward and backward and the exit loss.
    @Test func portableKernelsMatchAVX2() {
        let c = LlamaConfig(dim: 32, hiddenDim: 40, layerCount: 3, headCount: 4, kvHeadCount: 2, vocabSize: 300,
                            contextLength: 64, ropeStyle: .interleaved)
        var rnd = TestRandom(seed: 23)
        let p = rnd.parameters(c)
        let sequences = 2, tokens = 19, n = sequences * tokens
        let x = rnd.floats(n * c.dim, scale: 2), cot = rnd.floats(n * c.dim)
        let teacher = rnd.floats(n * c.dim)
        let head = WeightMatrix.owned(rows: c.vocabSize, cols: c.dim, values: rnd.floats(c.vocabSize * c.dim, scale: 0.4))
        func run() -> ([Float], [Float], Double) {
            let ws = BalconyLayerWorkspace(config: c)
            ws.forward(p, input: x, sequences: sequences, tokens: tokens)
            var grad = p.zeros()
            ws.backward(p, outputGradient: cot, accumulatingInto: &grad)
            var flat: [Float] = []
            grad.visitTensors { _, t in flat += t }
            var grads = [p.zeros()]
            var dHidden = [Float](repeating: 0, count: n * c.dim)
            let r = teacher.withUnsafeBufferPointer { t in
                dHidden.withUnsafeMutableBufferPointer { d in
                    ExitLoss(config: c).lossAndGradients(teacher: t.baseAddress!, rows: n, exitHidden: [ws.output],
                                                         parameters: [p], head: head, targets: (0..<n).map { $0 % 300 },
                                                         options: .init(temperature: 1.7, crossEntropyWeight: 0.4),
                                                         hiddenGradients: [d.baseAddress!], gradients: &grads)
                }
            }
            return (Array(UnsafeBufferPointer(start: ws.output, count: n * c.dim)), flat + dHidden, r.loss)
        }
        let (outA, gradA, lossA) = run()
        let hadAVX2 = balcony_training_kernels_use_avx2(1) == 0 && balcony_training_kernels_use_avx2(0) == 1
        balcony_training_kernels_use_avx2(1)
        let (outP, gradP, lossP) = run()
        balcony_training_kernels_use_avx2(0)
        #expect(zip(outA, outP).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) })
        let scale = gradA.map(abs).max()!
        #expect(zip(gradA, gradP).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
        #expect(abs(lossA - lossP) <= 1e-6 * lossA)
        if hadAVX2 { #expect(outA != outP || gradA != gradP, "two builds ran (results differ in rounding)") }
    }
}
