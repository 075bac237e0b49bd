import Foundation

/// Wall-clock seconds of one balcony training step, by phase.
public struct TrainingStepTiming: Sendable, Equatable {
    /// Every balcony layer's forward.
    public var forward: Double
    /// The exit loss of all exits with its gradients (teacher and exit logits, head backward).
    public var loss: Double
    /// Every balcony layer's backward.
    public var backward: Double
    /// Global-norm clipping and the AdamW update.
    public var optimizer: Double
    public var total: Double { forward + loss + backward + optimizer }
}

/// Times the balcony part of a training step on random weights and activations: every
/// balcony's layer forward, the exit loss of all exits, every backward, clipping and AdamW. The
/// frozen base model's forward, which produces a real step's inputs, is not included.
public enum TrainingBenchmark {
    /// Runs `steps` steps (the first also allocates the workspaces) and returns each one's timing.
    public static func run(config c: LlamaConfig, exits: [Int], sequences: Int, tokens: Int, steps: Int,
                           seed: UInt64 = 1) -> [TrainingStepTiming] {
        let n = sequences * tokens
        func random(_ count: Int, std: Double, _ name: String) -> [Float] {
            var g = NormalGenerator(seed: NormalGenerator.seed(seed, name: name))
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                g.fill(buffer, std: std)
                initialized = count
            }
        }
        let head = WeightMatrix.owned(rows: c.vocabSize, cols: c.dim, values: random(c.vocabSize * c.dim, std: 0.05, "head"))
        var params = exits.map { BalconyParameters.randomInitialized(config: c, exit: $0, seed: seed) }
        let inputs = exits.map { random(n * c.dim, std: 1, "input \($0)") }
        let teacher = random(n * c.dim, std: 1, "teacher")
        let layers = exits.map { _ in BalconyLayerWorkspace(config: c) }
        let loss = ExitLoss(config: c)
        var adam = AdamW(parameters: params)
        var grads = params.map { $0.zeros() }
        var timings: [TrainingStepTiming] = []
        for _ in 0..<steps {
            for i in grads.indices { grads[i].setToZero() }
            let t0 = Date()
            for e in exits.indices { layers[e].forward(params[e], input: inputs[e], sequences: sequences, tokens: tokens) }
            let t1 = Date()
            _ = teacher.withUnsafeBufferPointer { t in
                loss.lossAndGradients(teacher: t.baseAddress!, rows: n, exitHidden: layers.map(\.output), parameters: params,
                                      head: head, hiddenGradients: layers.map(\.outputGradient), gradients: &grads)
            }
            let t2 = Date()
            for e in exits.indices {
                layers[e].backward(params[e], outputGradient: layers[e].outputGradient, accumulatingInto: &grads[e])
            }
            let t3 = Date()
            GradientClipping.clip(&grads, maxNorm: 1)
            adam.update(&params, gradients: grads, learningRate: 5e-4)
            let t4 = Date()
            timings.append(TrainingStepTiming(forward: t1.timeIntervalSince(t0), loss: t2.timeIntervalSince(t1),
                                              backward: t3.timeIntervalSince(t2), optimizer: t4.timeIntervalSince(t3)))
        }
        return timings
    }

    /// Floating-point operations of the balcony part of a step: the linear layers (forward, and
    /// twice that backward), causal attention over the unmasked pairs (4 hd per pair forward,
    /// 8 hd backward), and the head (teacher and exit logits, exit logit gradients).
    public static func flops(config c: LlamaConfig, exits: Int, sequences: Int, tokens: Int) -> Double {
        let n = Double(sequences * tokens), e = Double(exits)
        let linear = 2 * n * Double(c.dim * (c.qDim + 2 * c.kvDim) + c.qDim * c.dim + 3 * c.dim * c.hiddenDim)
        let pairs = Double(sequences * c.headCount * tokens * (tokens + 1) / 2)
        let attention = 12 * Double(c.headDim) * pairs
        let head = 2 * n * Double(c.vocabSize * c.dim) * (2 * e + 1)
        return e * (3 * linear + attention) + head
    }
}
