import Foundation

/// One logged training step.
public struct TrainingStepReport: Sendable, Codable {
    public var step: Int
    public var tokens: Int
    public var lr: Double
    public var loss: Double
    /// KL(full || exit) per exit depth (keys are the depths as strings, for JSON).
    public var kl: [String: Double]
    public var tokensPerSecond: Double
    public var gradNorm: Double?
    public var holdoutKL: [String: Double]?
    /// Seconds of this step in the frozen teacher forward, the balcony layers (forward and
    /// backward) and the head with its loss.
    public var teacherSeconds: Double
    public var balconySeconds: Double
    public var headSeconds: Double

    public init(step: Int, tokens: Int, lr: Double, loss: Double, kl: [String: Double], tokensPerSecond: Double,
                gradNorm: Double? = nil, holdoutKL: [String: Double]? = nil, teacherSeconds: Double = 0,
                balconySeconds: Double = 0, headSeconds: Double = 0) {
        self.step = step
        self.tokens = tokens
        self.lr = lr
        self.loss = loss
        self.kl = kl
        self.tokensPerSecond = tokensPerSecond
        self.gradNorm = gradNorm
        self.holdoutKL = holdoutKL
        self.teacherSeconds = teacherSeconds
        self.balconySeconds = balconySeconds
        self.headSeconds = headSeconds
    }

    enum CodingKeys: String, CodingKey {
        case step, tokens, lr, loss, kl, tokensPerSecond = "tokens_per_s", gradNorm = "grad_norm"
        case holdoutKL = "holdout_kl", teacherSeconds = "teacher_s", balconySeconds = "balcony_s", headSeconds = "head_s"
    }
}

/// Errors of setting up a training run.
public enum TrainingError: LocalizedError, Equatable {
    case invalidSetting(String)

    public var errorDescription: String? {
        switch self {
        case let .invalidSetting(s): return "invalid training setting: \(s)"
        }
    }
}

/// Self-distillation of balconies against the frozen full model (DESIGN.md, "The math"):
/// per token, KL(softmax(z) || softmax(z_k)) with the teacher logits z from the same frozen
/// forward pass that gives h_k; loss = mean over exits of the mean over tokens; AdamW or SGD with
/// the configured schedule, clipping and gradient accumulation. Deterministic for a seed and thread count.
public final class BalconyTrainer {
    public let model: LlamaModel
    public let configuration: TrainingConfiguration
    public let data: TrainingData
    public let fingerprint: String
    public private(set) var balconies: [BalconyParameters]
    public private(set) var step: Int
    public private(set) var tokensSeen: Int
    private var loader: TrainingDataLoader
    private var adam: AdamW?
    private var sgd: SGD?
    private let teacher: TeacherForward
    private let workspaces: [BalconyLayerWorkspace]
    private let exitLoss: ExitLoss
    private let options: DistillationOptions
    /// Gradients of the step in progress, accumulated over its micro-batches.
    private var gradients: [BalconyParameters] = []

    /// A new run from initialized balconies (in `configuration.exits` order).
    public init(model: LlamaModel, configuration c: TrainingConfiguration, data: TrainingData,
                balconies: [BalconyParameters], fingerprint: String? = nil) throws {
        try Self.validate(c, model: model, data: data)
        guard balconies.map(\.exit) == c.exits else {
            throw TrainingError.invalidSetting("balconies \(balconies.map(\.exit)) do not match exits \(c.exits)")
        }
        self.model = model
        self.configuration = c
        self.data = data
        self.fingerprint = fingerprint ?? ModelFingerprint.compute(model.weights)
        self.balconies = balconies
        step = 0
        tokensSeen = 0
        loader = try data.loader()
        switch c.optimizer {
        case .adamw:
            adam = AdamW(parameters: balconies, beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon, weightDecay: c.weightDecay)
        case .sgd:
            sgd = SGD(parameters: balconies, momentum: c.momentum, weightDecay: c.weightDecay)
        }
        teacher = TeacherForward(model: model, exits: c.exits)
        workspaces = c.exits.map { _ in BalconyLayerWorkspace(config: model.config) }
        exitLoss = ExitLoss(config: model.config)
        options = DistillationOptions(temperature: Float(c.temperature), crossEntropyWeight: Float(c.crossEntropyWeight))
    }

    /// Continues a run from a training checkpoint, exactly where it stopped.
    public convenience init(model: LlamaModel, data: TrainingData, resuming checkpoint: TrainingCheckpoint) throws {
        try self.init(model: model, configuration: checkpoint.state.configuration, data: data,
                      balconies: checkpoint.balconies, fingerprint: checkpoint.state.baseFingerprint)
        guard checkpoint.state.dataDigest == data.digest else {
            throw TrainingError.invalidSetting("the training data differ from the run being resumed (token stream digest \(data.digest.prefix(12)) vs \(checkpoint.state.dataDigest.prefix(12))); resume with the same --data files and tokenizer")
        }
        step = checkpoint.state.step
        tokensSeen = checkpoint.state.tokensSeen
        loader = try data.loader(from: checkpoint.state.dataPosition)
        switch configuration.optimizer {
        case .adamw:
            adam = AdamW(parameters: balconies, beta1: configuration.beta1, beta2: configuration.beta2,
                         epsilon: configuration.epsilon, weightDecay: configuration.weightDecay,
                         firstMoments: checkpoint.moments.first, secondMoments: checkpoint.moments.second, step: step)
        case .sgd:
            sgd = SGD(parameters: balconies, momentum: configuration.momentum, weightDecay: configuration.weightDecay,
                      momentumBuffers: checkpoint.moments.first.isEmpty ? nil : checkpoint.moments.first, step: step)
        }
    }

    static func validate(_ c: TrainingConfiguration, model: LlamaModel, data: TrainingData) throws {
        let n = model.config.layerCount
        guard !c.exits.isEmpty else { throw TrainingError.invalidSetting("no exits to train") }
        for k in c.exits where k < 1 || k >= n {
            throw BalconyError.exitOutOfRange(k, layers: n)
        }
        guard Set(c.exits).count == c.exits.count else { throw BalconyError.duplicateExit(c.exits.first { e in c.exits.filter { $0 == e }.count > 1 }!) }
        guard c.sequenceLength >= 1, c.sequenceLength <= model.config.contextLength else {
            throw TrainingError.invalidSetting("sequence length \(c.sequenceLength) must be within the model's context of \(model.config.contextLength) tokens")
        }
        guard c.batchSize >= 1, c.gradientAccumulation >= 1, c.steps >= 1 else {
            throw TrainingError.invalidSetting("batch size, gradient accumulation and steps must be positive")
        }
        guard c.learningRate > 0, c.learningRate.isFinite else { throw TrainingError.invalidSetting("learning rate must be positive") }
        guard c.warmupFraction >= 0, c.warmupFraction <= 1 else { throw TrainingError.invalidSetting("warmup must be a fraction in [0, 1]") }
        guard c.temperature > 0 else { throw TrainingError.invalidSetting("temperature must be positive") }
        guard c.crossEntropyWeight >= 0, c.gradientClip >= 0 else { throw TrainingError.invalidSetting("--ce-weight and --clip must be >= 0") }
        guard c.klWeight == 1 else { throw TrainingError.invalidSetting("the KL weight is fixed at 1 (scale --ce-weight instead)") }
        guard data.sequenceLength == c.sequenceLength else {
            throw TrainingError.invalidSetting("data packed for \(data.sequenceLength)-token sequences, training uses \(c.sequenceLength)")
        }
        guard !data.trainingSequences.isEmpty else {
            throw TrainingError.invalidSetting("no training sequences: the data hold \(data.tokenCount) tokens, fewer than one sequence of \(c.sequenceLength + 1); add data or lower --seq-len")
        }
    }

    /// The learning rate of step `s` under the configured schedule.
    public func learningRate(at s: Int) -> Double {
        let c = configuration
        let warmup = Int((c.warmupFraction * Double(c.steps)).rounded(.up))
        switch c.schedule {
        case .cosine:
            return Double(CosineSchedule(peakLearningRate: Float(c.learningRate), totalSteps: c.steps, warmupFraction: c.warmupFraction,
                                         minimumLearningRate: Float(c.minLearningRate)).learningRate(at: s))
        case .linear:
            if s < warmup { return c.learningRate * Double(s) / Double(max(1, warmup)) }
            let progress = min(1, Double(s - warmup) / Double(max(1, c.steps - warmup)))
            return c.minLearningRate + (c.learningRate - c.minLearningRate) * (1 - progress)
        case .constant:
            if s < warmup { return c.learningRate * Double(s) / Double(max(1, warmup)) }
            return c.learningRate
        }
    }

    /// The sequences of the next micro-batch, without consuming them.
    public func peekBatch() -> [[Int]] {
        var copy = loader
        return copy.nextBatch(size: configuration.batchSize)
    }

    /// Loss and KL per exit on `sequences` (each `seqLen + 1` tokens, as batches come) without
    /// changing anything: the step-0 line and held-out evaluation.
    public func evaluate(_ sequences: [[Int]]) throws -> ExitLossResult {
        var total: ExitLossResult? = nil
        var count = 0
        // Evaluate in batch-sized groups so memory matches training.
        for start in stride(from: 0, to: sequences.count, by: configuration.batchSize) {
            let group = Array(sequences[start..<min(sequences.count, start + configuration.batchSize)])
            let r = try forwardLoss(group, backward: false).result
            total = total.map { Self.add($0, r, weight: Double(group.count)) } ?? Self.scale(r, Double(group.count))
            count += group.count
        }
        return Self.scale(total!, 1 / Double(count))
    }

    /// Runs one optimizer step (gradient accumulation included) and reports it.
    public func trainStep() throws -> TrainingStepReport {
        let c = configuration
        let started = Date()
        if gradients.count == balconies.count {
            for i in gradients.indices { gradients[i].setToZero() }
        } else {
            gradients = balconies.map { $0.zeros() }
        }
        var sum: ExitLossResult? = nil
        var times = (0.0, 0.0, 0.0)
        for _ in 0..<c.gradientAccumulation {
            let batch = loader.nextBatch(size: c.batchSize)
            let (r, t) = try forwardLoss(batch, backward: true)
            sum = sum.map { Self.add($0, r, weight: 1) } ?? r
            times = (times.0 + t.0, times.1 + t.1, times.2 + t.2)
            tokensSeen += batch.count * c.sequenceLength
        }
        if c.gradientAccumulation > 1 {
            let s = Float(1) / Float(c.gradientAccumulation)
            for i in gradients.indices { gradients[i].forEachTensor { _, t in for j in t.indices { t[j] *= s } } }
        }
        let norm = c.gradientClip > 0 ? GradientClipping.clip(&gradients, maxNorm: c.gradientClip) : GradientClipping.globalNorm(gradients)
        let lr = learningRate(at: step)
        if adam != nil { adam!.update(&balconies, gradients: gradients, learningRate: Float(lr)) }
        if sgd != nil { sgd!.update(&balconies, gradients: gradients, learningRate: Float(lr)) }
        step += 1
        let r = Self.scale(sum!, 1 / Double(c.gradientAccumulation))
        let seconds = Date().timeIntervalSince(started)
        return TrainingStepReport(
            step: step, tokens: tokensSeen, lr: lr, loss: r.loss, kl: klByExit(r),
            tokensPerSecond: Double(c.gradientAccumulation * c.batchSize * c.sequenceLength) / seconds,
            gradNorm: norm, holdoutKL: nil, teacherSeconds: times.0, balconySeconds: times.1, headSeconds: times.2)
    }

    /// KL per exit keyed by depth.
    public func klByExit(_ r: ExitLossResult) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(configuration.exits.map(String.init), r.klDivergence))
    }

    /// Everything needed to continue this run exactly.
    public func checkpoint(initialization: BalconyInitialization, modelName: String?) -> TrainingCheckpoint {
        let moments: OptimizerMoments
        if let adam {
            moments = OptimizerMoments(first: adam.firstMoments, second: adam.secondMoments)
        } else {
            moments = OptimizerMoments(first: configuration.momentum > 0 ? sgd!.momentumBuffers : [], second: [])
        }
        let state = TrainingState(configuration: configuration, step: step, tokensSeen: tokensSeen, dataPosition: loader.position,
                                  baseFingerprint: fingerprint, dataDigest: data.digest)
        let info = BalconyFileInfo(initialization: initialization, baseFingerprint: fingerprint,
                                   baseArchitecture: model.config.architecture,
                                   baseDescription: BalconyFile.describe(model.config, name: modelName),
                                   training: configuration, step: step, tokensSeen: tokensSeen)
        return TrainingCheckpoint(state: state, balconies: balconies, moments: moments, info: info)
    }

    // The frozen forward, the balcony layers and the loss for one micro-batch; with `backward`,
    // also the backward passes, accumulated into `gradients`.
    private func forwardLoss(_ batch: [[Int]], backward: Bool) throws
        -> (result: ExitLossResult, times: (Double, Double, Double)) {
        let t = configuration.sequenceLength
        let inputs = batch.map { Array($0.prefix(t)) }
        let targets: [Int]? = options.crossEntropyWeight > 0 ? batch.flatMap { Array($0.dropFirst().prefix(t)) } : nil
        var clock = Date()
        let out = try teacher.forward(inputs)
        let teacherTime = Date().timeIntervalSince(clock)
        clock = Date()
        forEachExit { e in
            workspaces[e].forward(balconies[e], input: out.exitHidden[configuration.exits[e]]!, sequences: batch.count, tokens: t)
        }
        var balconyTime = Date().timeIntervalSince(clock)
        clock = Date()
        let hidden = workspaces.map { $0.output }
        let teacherHidden = out.finalNormed
        let result: ExitLossResult
        if backward {
            result = exitLoss.lossAndGradients(teacher: teacherHidden, rows: out.rows, exitHidden: hidden,
                                               parameters: balconies, head: model.weights.output, targets: targets,
                                               options: options, hiddenGradients: workspaces.map { $0.outputGradient },
                                               gradients: &gradients)
        } else {
            result = exitLoss.loss(teacher: teacherHidden, rows: out.rows, exitHidden: hidden,
                                   parameters: balconies, head: model.weights.output, targets: targets, options: options)
        }
        let headTime = Date().timeIntervalSince(clock)
        if backward {
            clock = Date()
            gradients.withUnsafeMutableBufferPointer { grads in
                forEachExit { e in
                    workspaces[e].backward(balconies[e], outputGradient: workspaces[e].outputGradient, accumulatingInto: &grads[e])
                }
            }
            balconyTime += Date().timeIntervalSince(clock)
        }
        return (result, (teacherTime, balconyTime, headTime))
    }

    /// Runs `body` for every exit: one exit per thread at a time when the exits divide evenly among
    /// the threads (balconies are independent until the loss, and small layers run better whole on
    /// one thread than split across threads operation by operation), else one after another with
    /// every thread on each.
    private func forEachExit(_ body: (Int) -> Void) {
        if workspaces.count % ComputeThreads.count == 0 {
            parallelTasks(workspaces.count, body)
        } else {
            for e in workspaces.indices { body(e) }
        }
    }

    static func scale(_ r: ExitLossResult, _ s: Double) -> ExitLossResult {
        var r = r
        r.loss *= s
        r.exitLosses = r.exitLosses.map { $0 * s }
        r.klDivergence = r.klDivergence.map { $0 * s }
        r.crossEntropy = r.crossEntropy.map { $0 * s }
        return r
    }

    static func add(_ a: ExitLossResult, _ b: ExitLossResult, weight: Double) -> ExitLossResult {
        var r = a
        r.loss += weight * b.loss
        r.exitLosses = zip(a.exitLosses, b.exitLosses).map { $0 + weight * $1 }
        r.klDivergence = zip(a.klDivergence, b.klDivergence).map { $0 + weight * $1 }
        r.crossEntropy = zip(a.crossEntropy, b.crossEntropy).map { $0 + weight * $1 }
        r.targetCount += b.targetCount
        return r
    }
}
