import ArgumentParser
import BalconyCore
import Foundation

struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train balconies on a frozen model by self-distillation.",
        discussion: """
        Writes OUT/balconies.safetensors (the balconies, in the authors' Hugging Face layout), OUT/training-state.safetensors
        (everything --resume needs: balconies, optimizer state, data position; runs of earlier versions wrote it as
        checkpoint.safetensors, which --resume still reads), and OUT/metrics.jsonl (one JSON object per
        logged step: step, tokens, lr, loss, kl by exit, tokens_per_s). Line 0 holds the KL of the initialized balconies
        on the first batch. Small models want larger learning rates than the authors' 5e-4 for 1B-8B models: 3e-3 works
        for stories260K (docs/training.md).
        """)

    @OptionGroup var options: ModelOptions
    @Option(parsing: .upToNextOption, help: "Training text: files, folders, or JSON Lines with a 'text' field.") var data: [String] = []
    @Option(help: "Exit depths, e.g. 1,2,3 (default: N/4, N/2, 3N/4).") var exits: String?
    @Option(help: "Optimizer steps.") var steps: Int?
    @Option(help: "Training tokens (sets the steps from batch size and sequence length).") var tokens: Int?
    @Option(help: "Sequences per micro-batch.") var batchSize: Int = 8
    @Option(help: "Tokens per sequence (default: min(256, context)).") var seqLen: Int?
    @Option(help: "Peak learning rate.") var lr: Double = 5e-4
    @Option(help: "adamw or sgd.") var optimizer: String = "adamw"
    @Option(help: "Momentum for SGD.") var momentum: Double = 0
    @Option(help: "Weight decay.") var weightDecay: Double = 0
    @Option(help: "Warmup as a fraction of the steps.") var warmup: Double = 0.01
    @Option(help: "Learning-rate schedule: cosine, linear or constant.") var schedule: String = "cosine"
    @Option(help: "Global gradient-norm clip (0 = off).") var clip: Double = 1.0
    @Option(help: "Micro-batches per optimizer step.") var gradAccum: Int = 1
    @Option(help: "Balcony initialization: copy (of the last layer) or random.") var `init`: String = "copy"
    @Option(help: "Distillation temperature.") var temperature: Double = 1.0
    @Option(help: "Weight of a cross-entropy term on the data.") var ceWeight: Double = 0
    @Option(help: "Seed of initialization, data order and holdout.") var seed: UInt64 = 42
    @Option(help: "Fraction of sequences held out for evaluation.") var holdout: Double = 0
    @Option(help: "Train on N tokens sampled from the model itself instead of --data.") var selfGenerate: Int?
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Continue the run in --out from its checkpoint.") var resume = false
    @Option(help: "Write a checkpoint every N steps (0 = only at the end).") var saveEvery: Int = 100
    @Option(help: "Log every N steps.") var logEvery: Int = 10

    func validate() throws {
        if data.isEmpty == (selfGenerate == nil) { throw ValidationError("give training text with --data, or --self-generate N (not both)") }
        if steps != nil && tokens != nil { throw ValidationError("give --steps or --tokens, not both") }
        if let s = steps, s < 1 { throw ValidationError("--steps must be positive") }
        if let t = tokens, t < 1 { throw ValidationError("--tokens must be positive") }
        if batchSize < 1 || gradAccum < 1 || logEvery < 1 || saveEvery < 0 { throw ValidationError("--batch-size, --grad-accum and --log-every must be positive") }
        if OptimizerKind(rawValue: optimizer) == nil { throw ValidationError("--optimizer must be adamw or sgd") }
        if LearningRateSchedule(rawValue: schedule) == nil { throw ValidationError("--schedule must be cosine, linear or constant") }
        if BalconyInitialization(rawValue: `init`) == nil { throw ValidationError("--init must be copy or random") }
        if holdout < 0 || holdout >= 1 { throw ValidationError("--holdout must be a fraction in [0, 1)") }
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load(packing: .off)
            let tokenizer = try rt.requiredTokenizer
            let c = rt.model.config
            let exitList = try exits.map(parseExitList) ?? Self.defaultExits(layers: c.layerCount)
            let seq = seqLen ?? min(256, c.contextLength)
            let totalSteps = steps ?? tokens.map { max(1, $0 / (batchSize * seq * gradAccum)) } ?? 1000
            let config = TrainingConfiguration(
                exits: exitList, initialization: BalconyInitialization(rawValue: `init`)!, optimizer: OptimizerKind(rawValue: optimizer)!,
                learningRate: lr, weightDecay: weightDecay, momentum: momentum, schedule: LearningRateSchedule(rawValue: schedule)!,
                warmupFraction: warmup, steps: totalSteps, gradientClip: clip, batchSize: batchSize, sequenceLength: seq,
                gradientAccumulation: gradAccum, temperature: temperature, crossEntropyWeight: ceWeight, seed: seed,
                dataFiles: data, selfGeneratedTokens: selfGenerate ?? 0, holdoutFraction: holdout)
            // Check the settings against the model before reading data or touching --out.
            for k in exitList where k < 1 || k >= c.layerCount { throw BalconyError.exitOutOfRange(k, layers: c.layerCount) }
            guard seq <= c.contextLength else {
                throw TrainingError.invalidSetting("--seq-len \(seq) is beyond the model's context of \(c.contextLength) tokens")
            }
            let outDir = URL(fileURLWithPath: out)
            let checkpointURL = outDir.appendingPathComponent(TrainingStateFile.fileName)
            // Earlier versions wrote the training state under this name; --resume reads it, and the
            // run's saves then go to the name above.
            let legacyURL = outDir.appendingPathComponent(TrainingStateFile.legacyFileName)
            let balconyURL = outDir.appendingPathComponent(BalconyFile.fileName)
            let metricsURL = outDir.appendingPathComponent("metrics.jsonl")
            let fm = FileManager.default
            let stateURL = fm.fileExists(atPath: checkpointURL.path) || !fm.fileExists(atPath: legacyURL.path) ? checkpointURL : legacyURL
            let exists = fm.fileExists(atPath: stateURL.path)
            if resume && !exists { throw TrainingError.invalidSetting("--resume: \(checkpointURL.path) does not exist; start without --resume") }
            if !resume && exists {
                throw TrainingError.invalidSetting("\(out) already holds a training run; pass --resume to continue it, or choose another --out")
            }

            let fingerprint = ModelFingerprint.compute(rt.model.weights)
            printError("preparing data...")
            let trainingData: TrainingData
            if let n = selfGenerate {
                let docs = try SelfGeneratedCorpus.generate(model: rt.model, tokenizer: tokenizer, tokens: n, seed: seed)
                trainingData = try TrainingData(documents: docs, separator: try DocumentSeparator.of(tokenizer), sequenceLength: seq,
                                                holdoutFraction: holdout, seed: seed)
            } else {
                trainingData = try TrainingData.load(paths: data, tokenizer: tokenizer, sequenceLength: seq, holdoutFraction: holdout, seed: seed)
            }
            let trainer: BalconyTrainer
            if resume {
                let ckpt = try TrainingStateFile.read(from: stateURL, config: c, fingerprint: fingerprint, resuming: config,
                                                      dataDigest: trainingData.digest)
                trainer = try BalconyTrainer(model: rt.model, data: trainingData, resuming: ckpt)
                // The state and the balcony file are two writes; a crash between them leaves the
                // balconies a save behind (or missing). The state is the truth: rewrite them from it.
                try TrainingStateFile.syncBalconies(ckpt, config: c, to: balconyURL)
                printError("resuming at step \(trainer.step) of \(totalSteps)")
            } else {
                let initial = try exitList.map { k in
                    config.initialization == .copy ? try BalconyParameters.copyInitialized(from: rt.model.weights, exit: k)
                        : BalconyParameters.randomInitialized(config: c, exit: k, seed: seed)
                }
                trainer = try BalconyTrainer(model: rt.model, configuration: config, data: trainingData, balconies: initial, fingerprint: fingerprint)
            }
            try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
            let metrics = try TrainingMetricsLog(url: metricsURL, keepingStepsUpTo: resume ? trainer.step : nil)
            let modelName = URL(fileURLWithPath: rt.path).lastPathComponent
            printError(String(format: "training exits %@ of %d layers on %d tokens (%d sequences of %d, %d held out); %d steps of %d x %d tokens",
                              exitList.map(String.init).joined(separator: ","), c.layerCount, trainingData.tokenCount,
                              trainingData.trainingSequences.count, seq, trainingData.holdoutSequences.count, totalSteps, batchSize * gradAccum, seq))
            if !resume {
                let first = try trainer.evaluate(trainer.peekBatch())
                var line = TrainingStepReport(step: 0, tokens: 0, lr: trainer.learningRate(at: 0), loss: first.loss,
                                              kl: trainer.klByExit(first), tokensPerSecond: 0)
                if !trainingData.holdoutSequences.isEmpty { line.holdoutKL = trainer.klByExit(try trainer.evaluate(trainingData.holdout)) }
                try metrics.append(line)
            }
            let bar = TrainingProgressDisplay(totalSteps: totalSteps, exits: exitList)
            var reports: [TrainingStepReport] = []
            while trainer.step < totalSteps {
                var report = try trainer.trainStep()
                reports.append(report)
                let last = trainer.step == totalSteps
                if trainer.step % logEvery == 0 || last {
                    if !trainingData.holdoutSequences.isEmpty && (last || trainer.step % (logEvery * 10) == 0) {
                        report.holdoutKL = trainer.klByExit(try trainer.evaluate(trainingData.holdout))
                    }
                    try metrics.append(report)
                }
                bar.update(report)
                if (saveEvery > 0 && trainer.step % saveEvery == 0) || last {
                    let ckpt = trainer.checkpoint(initialization: config.initialization, modelName: modelName)
                    try TrainingStateFile.write(ckpt, config: c, to: checkpointURL)
                    try BalconyFile.write(ckpt.balconies, info: ckpt.info, config: c, to: balconyURL)
                }
            }
            bar.finish()
            if !reports.isEmpty {
                let median = MachineCeilings.median
                let teacher = median(reports.map(\.teacherSeconds)), balcony = median(reports.map(\.balconySeconds))
                let head = median(reports.map(\.headSeconds))
                let step = median(reports.map { Double(batchSize * gradAccum * seq) / $0.tokensPerSecond })
                printError(String(format: "median step %.3f s = %.0f tokens/s: frozen forward %.0f%%, balconies %.0f%%, head/KL %.0f%% (balcony bench --train adds FLOP/s)",
                                  step, Double(batchSize * gradAccum * seq) / step, 100 * teacher / step, 100 * balcony / step, 100 * head / step))
            }
            printError("wrote \(balconyURL.path) (\(trainer.step) steps, \(trainer.tokensSeen) tokens); metrics in \(metricsURL.path)")
        }
    }

    /// N/4, N/2, 3N/4 rounded, within 1...N-1, without duplicates.
    static func defaultExits(layers n: Int) -> [Int] {
        var out: [Int] = []
        for f in [0.25, 0.5, 0.75] {
            let k = min(max(Int((Double(n) * f).rounded()), 1), n - 1)
            if !out.contains(k) { out.append(k) }
        }
        return out
    }
}

/// The training progress: a live line on a terminal (step, loss per exit, tokens/s, time left),
/// plain lines every few seconds in logs.
final class TrainingProgressDisplay {
    let totalSteps: Int
    let exits: [Int]
    let bar = ProgressBar()
    let start = Date()

    init(totalSteps: Int, exits: [Int]) {
        self.totalSteps = totalSteps
        self.exits = exits
    }

    func update(_ r: TrainingStepReport) {
        let kl = exits.map { String(format: "%d:%.3f", $0, r.kl[String($0)] ?? 0) }.joined(separator: " ")
        bar.update("step \(r.step)/\(totalSteps) loss \(String(format: "%.4f", r.loss)) kl \(kl) \(Int(r.tokensPerSecond)) tok/s",
                   done: Int64(r.step), total: Int64(totalSteps), unit: .count, force: r.step == totalSteps)
    }

    func finish() { bar.finish() }
}
