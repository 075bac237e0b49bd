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

/// Throughput of whole training steps on a real model (`balcony bench --train`): the frozen
/// teacher forward, the balconies' forward and backward and the head with its loss, as
/// `BalconyTrainer.trainStep` runs them, with the achieved FLOP/s against an SGEMM measured in the
/// same run.
public struct TrainingThroughput: Sendable, Codable {
    public var threads: Int
    public var exits: [Int]
    public var sequences: Int
    public var tokens_per_sequence: Int
    public var steps: Int
    /// Medians over the measured steps (the first, which allocates, is not measured).
    public var step_s: Double
    public var tokens_per_s: Double
    public var teacher_s: Double
    public var balcony_s: Double
    public var head_s: Double
    /// The rest of a step: zeroing, clipping, the optimizer.
    public var other_s: Double
    /// Process CPU seconds per step (all threads), median: what contention for the cores cannot inflate.
    public var cpu_s: Double
    /// FLOPs of one step: teacher (base layers forward), balconies (forward and backward), head.
    public var teacher_gflop: Double
    public var balcony_gflop: Double
    public var head_gflop: Double
    public var gflops: Double
    /// SGEMM rate in the same run (1024 x 1024 x 1024, median of runs before and after the steps).
    public var gemm_gflops: Double
    public var gemm_fraction: Double
    /// The SGEMM kernel (`BLAS.kernelName`) and the FMA peak at `threads` threads, measured in the
    /// same run, with the step's rate and the SGEMM's as fractions of it.
    public var gemm_kernel: String
    public var fma_peak_gflops: Double
    public var peak_fraction: Double
    public var gemm_peak_fraction: Double
}

extension TrainingBenchmark {
    /// Runs `steps + 1` training steps of `model` with fresh copy-initialized balconies at
    /// `exits` on uniformly random token sequences (seeded), AdamW.
    public static func throughput(model: LlamaModel, exits: [Int], sequences: Int, tokens: Int, steps: Int,
                                  seed: UInt64 = 1) throws -> TrainingThroughput {
        let c = model.config
        var rng = Xoshiro256StarStar(seed: NormalGenerator.seed(seed, name: "bench tokens"))
        let doc = (0...(steps + 1) * sequences * tokens).map { _ in Int.random(in: 0..<c.vocabSize, using: &rng) }
        let data = try TrainingData(documents: [doc], separator: .bos(1 % c.vocabSize), sequenceLength: tokens, seed: seed)
        let config = TrainingConfiguration(exits: exits, learningRate: 1e-3, steps: steps + 1, batchSize: sequences,
                                           sequenceLength: tokens, seed: seed)
        let balconies = try exits.map { try BalconyParameters.copyInitialized(from: model.weights, exit: $0) }
        let trainer = try BalconyTrainer(model: model, configuration: config, data: data, balconies: balconies, fingerprint: "bench")
        let gemm = { MachineCeilings.gemmFlops(m: 1024, n: 1024, k: 1024, repeats: 3) }
        var gemmRates = [gemm()]
        let peak = MachineCeilings.fmaPeak(threads: ComputeThreads.count)
        var reports: [TrainingStepReport] = [], walls: [Double] = [], cpus: [Double] = []
        for s in 0...steps {
            let cpu0 = processCPUSeconds(), t0 = Date()
            let r = try trainer.trainStep()
            if s > 0 {
                walls.append(Date().timeIntervalSince(t0))
                cpus.append(processCPUSeconds() - cpu0)
                reports.append(r)
            }
        }
        gemmRates.append(gemm())
        let median = MachineCeilings.median
        let step = median(walls)
        let f = trainingFlops(config: c, exits: exits, sequences: sequences, tokens: tokens)
        let total = f.teacher + f.balcony + f.head
        let rate = total / step, gemmRate = median(gemmRates)
        let teacher = median(reports.map(\.teacherSeconds)), balcony = median(reports.map(\.balconySeconds))
        let head = median(reports.map(\.headSeconds))
        return TrainingThroughput(
            threads: ComputeThreads.count, exits: exits, sequences: sequences, tokens_per_sequence: tokens, steps: steps,
            step_s: step, tokens_per_s: Double(sequences * tokens) / step, teacher_s: teacher, balcony_s: balcony,
            head_s: head, other_s: max(0, step - teacher - balcony - head), cpu_s: median(cpus),
            teacher_gflop: f.teacher / 1e9, balcony_gflop: f.balcony / 1e9, head_gflop: f.head / 1e9,
            gflops: rate / 1e9, gemm_gflops: gemmRate / 1e9, gemm_fraction: rate / gemmRate,
            gemm_kernel: BLAS.kernelName, fma_peak_gflops: peak / 1e9, peak_fraction: rate / peak,
            gemm_peak_fraction: gemmRate / peak)
    }

    /// FLOPs of a whole training step by phase: the teacher's base layers forward (linear layers
    /// and the unmasked attention pairs), the balconies (`flops` less the head) and the head.
    public static func trainingFlops(config c: LlamaConfig, exits: [Int], sequences: Int, tokens: Int)
        -> (teacher: Double, balcony: Double, head: Double) {
        let n = Double(sequences * tokens), e = Double(exits.count)
        let linear = 2 * n * Double(c.dim * (c.qDim + 2 * c.kvDim) + c.qDim * c.dim + 3 * c.dim * c.hiddenDim)
        let pairs = Double(sequences * c.headCount * tokens * (tokens + 1) / 2)
        let head = 2 * n * Double(c.vocabSize * c.dim) * (2 * e + 1)
        let all = flops(config: c, exits: exits.count, sequences: sequences, tokens: tokens)
        return (Double(c.layerCount) * (linear + 4 * Double(c.headDim) * pairs), all - head, head)
    }

    /// User plus system CPU seconds of this process so far.
    static func processCPUSeconds() -> Double {
        var u = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &u)
        #else
        getrusage(RUSAGE_SELF, &u)
        #endif
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
