import Foundation

/// How the balconies start (DESIGN.md "Initialization").
public enum BalconyInitialization: String, Codable, Sendable, CaseIterable {
    /// The authors' default: the layer copies the base model's last layer, the exit norm copies
    /// layer k's input norm.
    case copy
    /// Linear weights ~ N(0, 0.02), norm weights 1.
    case random
}

/// The optimizer that updates the balconies.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// AdamW (decoupled weight decay), PyTorch's `torch.optim.AdamW`; the authors' choice.
    case adamw
    /// SGD with optional momentum, PyTorch's `torch.optim.SGD`.
    case sgd
}

/// The learning-rate schedule after warmup.
public enum LearningRateSchedule: String, Codable, Sendable, CaseIterable {
    /// Half a cosine from the peak to `minLearningRate` over the steps after warmup (authors).
    case cosine
    /// Straight line from the peak to `minLearningRate`.
    case linear
    /// The peak for every step after warmup.
    case constant
}

/// Every setting that decides what a training run computes: the record kept in balcony files
/// (`training_config`) and in training states, where a resumed run must agree with it to continue
/// bit for bit. Defaults are the authors' hyperparameters (DESIGN.md).
///
/// Settings that change only what is reported or where files go (log interval, output path,
/// thread count) are not part of it.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// Exit depths, in the order of the file's `exit_modules.{i}`.
    public var exits: [Int]
    public var initialization: BalconyInitialization
    public var optimizer: OptimizerKind
    /// Peak learning rate.
    public var learningRate: Double
    /// AdamW's beta1 and beta2 (betas of the moving averages).
    public var beta1: Double
    public var beta2: Double
    /// AdamW's epsilon.
    public var epsilon: Double
    /// Decoupled weight decay (AdamW) or L2 penalty (SGD).
    public var weightDecay: Double
    /// SGD momentum (0 = none); unused by AdamW.
    public var momentum: Double
    public var schedule: LearningRateSchedule
    /// Fraction of `steps` spent warming up linearly from 0 (authors: 1 %).
    public var warmupFraction: Double
    /// Learning rate at the end of the schedule.
    public var minLearningRate: Double
    /// Optimizer steps of the whole run (the schedule's length).
    public var steps: Int
    /// Global gradient-norm clip (0 = off; authors: 1.0).
    public var gradientClip: Double
    /// Sequences per micro-batch.
    public var batchSize: Int
    /// Tokens per sequence (the model sees `sequenceLength` inputs and as many targets).
    public var sequenceLength: Int
    /// Micro-batches whose gradients are summed before each optimizer step.
    public var gradientAccumulation: Int
    /// Distillation temperature T (logits scaled by 1/T, loss by T²).
    public var temperature: Double
    /// Weight of the KL term (authors: 1).
    public var klWeight: Double
    /// Weight of the cross-entropy term on the data (authors: 0).
    public var crossEntropyWeight: Double
    /// Seed of initialization, data order, holdout choice and self-generated data.
    public var seed: UInt64
    /// Training data as given on the command line (files and folders).
    public var dataFiles: [String]
    /// Tokens of self-generated corpus (`--self-generate N`), 0 when the data come from files.
    public var selfGeneratedTokens: Int
    /// Fraction of sequences held out for evaluation.
    public var holdoutFraction: Double

    public init(
        exits: [Int], initialization: BalconyInitialization = .copy, optimizer: OptimizerKind = .adamw,
        learningRate: Double = 5e-4, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
        weightDecay: Double = 0, momentum: Double = 0, schedule: LearningRateSchedule = .cosine,
        warmupFraction: Double = 0.01, minLearningRate: Double = 0, steps: Int, gradientClip: Double = 1,
        batchSize: Int = 8, sequenceLength: Int = 256, gradientAccumulation: Int = 1, temperature: Double = 1,
        klWeight: Double = 1, crossEntropyWeight: Double = 0, seed: UInt64 = 42, dataFiles: [String] = [],
        selfGeneratedTokens: Int = 0, holdoutFraction: Double = 0
    ) {
        self.exits = exits
        self.initialization = initialization
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.schedule = schedule
        self.warmupFraction = warmupFraction
        self.minLearningRate = minLearningRate
        self.steps = steps
        self.gradientClip = gradientClip
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.gradientAccumulation = gradientAccumulation
        self.temperature = temperature
        self.klWeight = klWeight
        self.crossEntropyWeight = crossEntropyWeight
        self.seed = seed
        self.dataFiles = dataFiles
        self.selfGeneratedTokens = selfGeneratedTokens
        self.holdoutFraction = holdoutFraction
    }

    enum CodingKeys: String, CodingKey {
        case exits, initialization = "init", optimizer
        case learningRate = "lr", beta1 = "beta1", beta2 = "beta2", epsilon = "eps", weightDecay = "weight_decay"
        case momentum, schedule = "lr_scheduler", warmupFraction = "warmup_ratio", minLearningRate = "min_lr"
        case steps = "max_steps", gradientClip = "max_grad_norm", batchSize = "batch_size"
        case sequenceLength = "seq_len", gradientAccumulation = "gradient_accumulation_steps"
        case temperature, klWeight = "kl_weight", crossEntropyWeight = "ce_weight", seed
        case dataFiles = "data_files", selfGeneratedTokens = "self_generate_tokens", holdoutFraction = "holdout"
    }

    /// Tokens consumed per optimizer step.
    public var tokensPerStep: Int { batchSize * sequenceLength * gradientAccumulation }

    /// Checks ranges; the message names the setting and the allowed values.
    public func validate() throws {
        func bad(_ why: String) -> TrainingConfigurationError { .invalid(why) }
        guard !exits.isEmpty else { throw bad("no exits: pass at least one exit depth (e.g. --exits 2,4)") }
        guard Set(exits).count == exits.count else { throw bad("exits \(exits) list a depth twice") }
        guard learningRate > 0, learningRate.isFinite else { throw bad("learning rate must be positive, got \(learningRate)") }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else { throw bad("betas must be in [0, 1), got \(beta1), \(beta2)") }
        guard epsilon > 0 else { throw bad("epsilon must be positive, got \(epsilon)") }
        guard weightDecay >= 0 else { throw bad("weight decay must be >= 0, got \(weightDecay)") }
        guard (0..<1).contains(momentum) else { throw bad("momentum must be in [0, 1), got \(momentum)") }
        guard (0...1).contains(warmupFraction) else { throw bad("warmup fraction must be in [0, 1], got \(warmupFraction)") }
        guard minLearningRate >= 0, minLearningRate <= learningRate else {
            throw bad("minimum learning rate must be in [0, \(learningRate)], got \(minLearningRate)")
        }
        guard steps > 0 else { throw bad("steps must be positive, got \(steps)") }
        guard gradientClip >= 0 else { throw bad("gradient clip must be >= 0 (0 = off), got \(gradientClip)") }
        guard batchSize > 0, sequenceLength > 0, gradientAccumulation > 0 else {
            throw bad("batch size, sequence length and gradient accumulation must be positive (got \(batchSize), \(sequenceLength), \(gradientAccumulation))")
        }
        guard temperature > 0, temperature.isFinite else { throw bad("temperature must be positive, got \(temperature)") }
        guard klWeight >= 0, crossEntropyWeight >= 0, klWeight + crossEntropyWeight > 0 else {
            throw bad("loss weights must be >= 0 and not both 0 (kl \(klWeight), ce \(crossEntropyWeight))")
        }
        guard selfGeneratedTokens >= 0 else { throw bad("self-generated tokens must be >= 0, got \(selfGeneratedTokens)") }
        guard holdoutFraction >= 0, holdoutFraction < 1 else { throw bad("holdout fraction must be in [0, 1), got \(holdoutFraction)") }
    }

    /// Compact JSON with sorted keys (the `training_config` metadata string).
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Decodes `jsonString()` output.
    public static func decode(json: String) throws -> TrainingConfiguration {
        try JSONDecoder().decode(TrainingConfiguration.self, from: Data(json.utf8))
    }

    /// The settings that differ from `other`, one "key: saved X, now Y" entry each (JSON key
    /// names, as the metadata spells them), in key order. `ignoring` lists keys not compared.
    public func differences(from saved: TrainingConfiguration, ignoring: Set<String> = []) -> [String] {
        func fields(_ c: TrainingConfiguration) -> [String: String] {
            guard let data = try? JSONEncoder().encode(c),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            var out: [String: String] = [:]
            for (key, value) in object {
                // Each value is re-serialized on its own so that lists and numbers compare as text.
                let wrapped = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .withoutEscapingSlashes])
                out[key] = wrapped.map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\(value)"
            }
            return out
        }
        let now = fields(self), before = fields(saved)
        return Set(now.keys).union(before.keys).subtracting(ignoring).sorted().compactMap { key in
            let a = before[key] ?? "(none)", b = now[key] ?? "(none)"
            return a == b ? nil : "\(key): saved \(a), now \(b)"
        }
    }
}

/// Errors of training settings.
public enum TrainingConfigurationError: LocalizedError, Equatable {
    case invalid(String)

    public var errorDescription: String? {
        switch self {
        case let .invalid(why): return "invalid training setting: \(why)"
        }
    }
}
