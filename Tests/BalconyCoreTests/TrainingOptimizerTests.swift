import Foundation
import Testing
@testable import BalconyCore

/// AdamW and SGD against hand-computed steps, the cosine schedule at known steps, and global-norm
/// clipping across balconies.
@Suite struct TrainingOptimizerTests {
    static let config = LlamaConfig(dim: 4, hiddenDim: 6, layerCount: 3, headCount: 2, kvHeadCount: 1, vocabSize: 8,
                                    contextLength: 8, attentionBias: true)

    /// Parameters whose every entry is `value`.
    static func filled(_ value: Float) -> BalconyParameters {
        var p = BalconyParameters.randomInitialized(config: config, exit: 1, seed: 0)
        p.forEachTensor { _, t in t = .init(repeating: value, count: t.count) }
        return p
    }

    func allEqual(_ p: BalconyParameters, _ expected: Double, tolerance: Double) -> Bool {
        var ok = true
        p.visitTensors { _, t in ok = ok && t.allSatisfy { abs(Double($0) - expected) <= tolerance } }
        return ok
    }

    /// Two AdamW steps worked by hand (PyTorch's formula), with weight decay and a changing rate:
    /// step 1: p = 1 * (1 - 0.1 * 0.01) - (0.1 / 0.1) * 0.05 / (sqrt(2.5e-4) / sqrt(1e-3) + 1e-8) = 0.899000002
    /// step 2: m = 0.02, v = 3.1225e-4, p = 0.899000002 * (1 - 0.05 * 0.01) - (0.05 / 0.19) * 0.02 /
    ///         (sqrt(3.1225e-4) / sqrt(1.999e-3) + 1e-8) = 0.8852336504
    @Test func adamWTwoSteps() {
        var params = [Self.filled(1), Self.filled(-2)]
        var adam = AdamW(parameters: params, weightDecay: 0.01)
        adam.update(&params, gradients: [Self.filled(0.5), Self.filled(0.001)], learningRate: 0.1)
        #expect(adam.step == 1)
        #expect(allEqual(params[0], 0.899000002, tolerance: 1e-6))
        #expect(allEqual(params[1], -2.0979990000, tolerance: 1e-6))
        adam.update(&params, gradients: [Self.filled(-0.25), Self.filled(0.002)], learningRate: 0.05)
        #expect(adam.step == 2)
        #expect(allEqual(params[0], 0.8852336504, tolerance: 1e-6))
        #expect(allEqual(params[1], -2.1452087966, tolerance: 1e-6))
        #expect(allEqual(adam.firstMoments[0], 0.02, tolerance: 1e-8))
        #expect(allEqual(adam.secondMoments[0], 3.1225e-4, tolerance: 2e-10))   // Float betas would miss by 4e-9
    }

    /// SGD with momentum 0.9 and weight decay 0.1: d = g + 0.1 p; buf = d, then 0.9 buf + d.
    /// step 1: d = 0.6, p = 1 - 0.1 * 0.6 = 0.94; step 2: d = -0.25 + 0.094, buf = 0.384, p = 0.9208.
    @Test func sgdWithMomentum() {
        var params = [Self.filled(1)]
        var sgd = SGD(parameters: params, momentum: 0.9, weightDecay: 0.1)
        sgd.update(&params, gradients: [Self.filled(0.5)], learningRate: 0.1)
        #expect(allEqual(params[0], 0.94, tolerance: 1e-6))
        sgd.update(&params, gradients: [Self.filled(-0.25)], learningRate: 0.05)
        #expect(allEqual(params[0], 0.9208, tolerance: 1e-6))
        var plain = [Self.filled(1)]
        var sgd0 = SGD(parameters: plain)
        sgd0.update(&plain, gradients: [Self.filled(0.5)], learningRate: 0.1)
        sgd0.update(&plain, gradients: [Self.filled(0.5)], learningRate: 0.1)
        #expect(allEqual(plain[0], 0.9, tolerance: 1e-6))
    }

    @Test func cosineScheduleWithWarmup() {
        let s = CosineSchedule(peakLearningRate: 5e-4, totalSteps: 1000, warmupFraction: 0.01)
        #expect(s.warmupSteps == 10)
        #expect(s.learningRate(at: 0) == 0)
        #expect(abs(s.learningRate(at: 5) - 2.5e-4) < 1e-10)
        #expect(abs(s.learningRate(at: 10) - 5e-4) < 1e-10)
        #expect(abs(s.learningRate(at: 505) - 2.5e-4) < 1e-9)            // halfway through the decay
        #expect(abs(s.learningRate(at: 257) - Float(5e-4 * 0.5 * (1 + cos(Double.pi * 247 / 990)))) < 1e-9)
        #expect(s.learningRate(at: 999) > 0 && s.learningRate(at: 999) < 1e-8)
        #expect(s.learningRate(at: 1000) == 0)
        let floor = CosineSchedule(peakLearningRate: 5e-4, totalSteps: 1000, warmupFraction: 0.01, minimumLearningRate: 5e-5)
        #expect(abs(floor.learningRate(at: 505) - 2.75e-4) < 1e-9)
        #expect(abs(floor.learningRate(at: 1000) - 5e-5) < 1e-10)
        // Hugging Face rounds the warmup up: 1.5 steps -> 2.
        #expect(CosineSchedule(peakLearningRate: 1, totalSteps: 100, warmupFraction: 0.015).warmupSteps == 2)
        let noWarmup = CosineSchedule(peakLearningRate: 1, totalSteps: 4, warmupFraction: 0)
        #expect(noWarmup.learningRate(at: 0) == 1 && abs(noWarmup.learningRate(at: 2) - 0.5) < 1e-7)
    }

    @Test func globalNormClipping() {
        var grads = [Self.filled(0), Self.filled(0)]
        grads[0].wq[3] = 3
        grads[1].bv![1] = 4                                  // norm 5 across both balconies
        #expect(abs(GradientClipping.globalNorm(grads) - 5) < 1e-12)
        var unclipped = grads
        #expect(abs(GradientClipping.clip(&unclipped, maxNorm: 10) - 5) < 1e-12)
        #expect(unclipped == grads)
        let norm = GradientClipping.clip(&grads, maxNorm: 1)
        #expect(abs(norm - 5) < 1e-12)
        #expect(abs(grads[0].wq[3] - 0.6) < 1e-6 && abs(grads[1].bv![1] - 0.8) < 1e-6)
        #expect(abs(GradientClipping.globalNorm(grads) - 1) < 1e-6)
    }
}
