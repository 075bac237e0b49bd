import Foundation

/// One set of balconies to evaluate: a file (trained, or untrained for comparison) and the series
/// name its rows carry.
public struct BalconyVariant: Sendable {
    /// "balcony" for the first set, "balcony:LABEL" for the others.
    public var method: String
    public var label: String
    /// The file it came from, nil for balconies made in memory (`--copy-init-exits`).
    public var file: String?
    public var model: BalconyModel
    public var initialization: String
    public var steps: Int
    public var tokensSeen: Int

    public init(method: String, label: String, file: String?, model: BalconyModel, initialization: String, steps: Int, tokensSeen: Int) {
        self.method = method
        self.label = label
        self.file = file
        self.model = model
        self.initialization = initialization
        self.steps = steps
        self.tokensSeen = tokensSeen
    }

    /// A short label from what the file records: "copy-614k", "random-2.5M", "copy-untrained".
    public static func describe(initialization: String, tokensSeen: Int) -> String {
        let tokens: String
        switch tokensSeen {
        case 0: tokens = "untrained"
        case ..<1_000: tokens = "\(tokensSeen)"
        case ..<1_000_000: tokens = String(format: "%.0fk", Double(tokensSeen) / 1e3)
        default: tokens = String(format: "%.2gM", Double(tokensSeen) / 1e6)
        }
        return "\(initialization)-\(tokens)"
    }
}

/// The baselines `balcony eval` compares exits against.
public enum Baseline: String, CaseIterable, Sendable, Codable {
    case earlyExit = "early-exit"
    case shortGPT = "shortgpt"

    /// Parses "early-exit,shortgpt" (or "none").
    public static func parseList(_ s: String) throws -> [Baseline] {
        let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if parts == ["none"] { return [] }
        return try parts.map {
            guard let b = Baseline(rawValue: $0) else { throw EvaluationError.unknownBaseline($0) }
            return b
        }
    }
}

/// What to evaluate and how.
public struct EvaluationSettings: Sendable, Codable {
    /// Tokens per data file at most (BOS included), nil for the whole file.
    public var maxTokens: Int?
    /// Window of the perplexity passes (default: the model's context).
    public var window: Int
    public var baselines: [Baseline]
    /// Depths of the baselines: the balconies' exits by default.
    public var depths: [Int]
    public var numFewshot: Int
    public var seed: UInt64
    /// Greedy decode steps per method for the tokens/s measurement (0 = not measured).
    public var speedTokens: Int
    /// Calibration text of ShortGPT's Block Influence.
    public var calibrationFile: String?
    public var calibrationTokens: Int
    public var threads: Int

    enum CodingKeys: String, CodingKey {
        case maxTokens = "max_tokens", window, baselines, depths, numFewshot = "num_fewshot", seed, speedTokens = "speed_tokens"
        case calibrationFile = "calibration_file", calibrationTokens = "calibration_tokens", threads
    }

    public init(maxTokens: Int? = nil, window: Int, baselines: [Baseline] = Baseline.allCases, depths: [Int], numFewshot: Int = 0,
                seed: UInt64 = 1234, speedTokens: Int = 128, calibrationFile: String? = nil, calibrationTokens: Int = 4096, threads: Int = 1) {
        self.maxTokens = maxTokens
        self.window = window
        self.baselines = baselines
        self.depths = depths
        self.numFewshot = numFewshot
        self.seed = seed
        self.speedTokens = speedTokens
        self.calibrationFile = calibrationFile
        self.calibrationTokens = calibrationTokens
        self.threads = threads
    }
}

/// Everything `balcony eval` measured: `results.json`.
public struct EvaluationResults: Sendable, Codable {
    public struct Model: Sendable, Codable {
        public var path: String
        public var fingerprint: String
        public var architecture: String
        public var layers: Int
        public var dim: Int
        public var vocab: Int
        public var context: Int
    }
    public struct Variant: Sendable, Codable {
        public var method: String
        public var label: String
        public var file: String?
        public var sha256: String?
        public var initialization: String
        public var steps: Int
        public var tokensSeen: Int
        public var exits: [Int]
        enum CodingKeys: String, CodingKey {
            case method, label, file, sha256, initialization = "init", steps, tokensSeen = "tokens_seen", exits
        }
    }
    public struct ShortGPT: Sendable, Codable {
        public var calibrationFile: String
        public var calibrationSHA256: String
        public var blockInfluence: BlockInfluence
        /// Layers from least to most influential.
        public var removalOrder: [Int]
        /// Layers kept at each depth k ("k": [layers]).
        public var kept: [String: [Int]]
        enum CodingKeys: String, CodingKey {
            case calibrationFile = "calibration_file", calibrationSHA256 = "calibration_sha256", blockInfluence = "block_influence"
            case removalOrder = "removal_order", kept
        }
    }
    public struct Speed: Sendable, Codable {
        public var method: String
        public var exit: Int?
        public var tokensPerSecond: Double
        /// Full model's decode time over this method's.
        public var measuredSpeedup: Double
        enum CodingKeys: String, CodingKey { case method, exit, tokensPerSecond = "tokens_per_s", measuredSpeedup = "measured_speedup" }
    }
    public struct DataFile: Sendable, Codable {
        public var file: String
        public var sha256: String
        /// Tokens evaluated (BOS included) and the UTF-8 bytes they cover.
        public var tokens: Int
        public var bytes: Int
        public var rows: [LanguageModelRow]
    }
    public struct Task: Sendable, Codable {
        public var file: String
        public var name: String
        public var format: TaskFormat
        public var sha256: String
        public var items: Int
        public var numFewshot: Int
        public var rows: [TaskRow]
        enum CodingKeys: String, CodingKey { case file, name, format, sha256, items, numFewshot = "num_fewshot", rows }
    }

    public var model: Model
    public var balconies: [Variant]
    public var settings: EvaluationSettings
    public var shortgpt: ShortGPT?
    public var speed: [Speed]
    public var data: [DataFile]
    public var tasks: [Task]
}

/// Runs a whole evaluation: builds the methods (full model, every balcony exit of every variant,
/// the baselines at the same depths), then scores every data file and task with each.
public struct EvaluationSuite: Sendable {
    public var base: LlamaModel
    public var modelPath: String
    public var tokenizer: any Tokenizer
    public var variants: [BalconyVariant]
    public var settings: EvaluationSettings

    /// Stage name, units done, units in the stage.
    public typealias Progress = (_ stage: String, _ done: Int, _ total: Int) -> Void

    public init(base: LlamaModel, modelPath: String, tokenizer: any Tokenizer, variants: [BalconyVariant], settings: EvaluationSettings) {
        self.base = base
        self.modelPath = modelPath
        self.tokenizer = tokenizer
        self.variants = variants
        self.settings = settings
    }

    /// Text file -> token ids (BOS first when the model expects it), cut to `maxTokens`.
    public func tokens(ofFile path: String, limit: Int?) throws -> [Int] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw EvaluationError.unreadableFile(path, "not a readable UTF-8 text file")
        }
        var ids = tokenizer.encodeForModel(text)
        if let limit { ids = Array(ids.prefix(max(limit, 0))) }
        let textTokens = ids.count - (ids.first == tokenizer.bosTokenId && tokenizer.addsBOS ? 1 : 0)
        guard ids.count >= 2, textTokens >= 1 else { throw EvaluationError.emptyData(path) }
        return ids
    }

    /// Block Influence of every layer over the calibration text.
    public func blockInfluence() throws -> (BlockInfluence, file: String)? {
        guard settings.baselines.contains(.shortGPT), let file = settings.calibrationFile else { return nil }
        let ids = try tokens(ofFile: file, limit: settings.calibrationTokens)
        return (try BlockInfluence.measure(model: base, tokens: ids, window: settings.window), file)
    }

    /// The methods in report order: the full model, then per depth the balcony variants and the
    /// baselines.
    public func methods(blockInfluence bi: BlockInfluence?) -> [EvaluationMethod] {
        let costs = ExitCostModel(variants.first?.model ?? (try! BalconyModel(base: base, balconies: [])))
        var out = [EvaluationMethod.full(base)]
        let depths = Set(settings.depths + variants.flatMap { $0.model.exits }).sorted()
        for k in depths {
            for v in variants where v.model.exits.contains(k) { out.append(.balcony(v.model, exit: k, method: v.method)) }
            guard settings.depths.contains(k) else { continue }
            if settings.baselines.contains(.earlyExit) { out.append(.earlyExit(base, exit: k, costs: costs)) }
            if settings.baselines.contains(.shortGPT), let bi { out.append(.shortGPT(base, layers: bi.keptLayers(k), costs: costs)) }
        }
        return out
    }

    public func run(dataFiles: [String], taskFiles: [String], progress: Progress = { _, _, _ in }) throws -> EvaluationResults {
        // Read every input before the long passes, so bad input fails fast.
        let tasks = try taskFiles.map(TaskSet.load)
        let texts = try dataFiles.map { ($0, try tokens(ofFile: $0, limit: settings.maxTokens)) }
        let c = base.config
        progress("block influence", 0, 1)
        let bi = try blockInfluence()
        progress("block influence", 1, 1)
        let methods = methods(blockInfluence: bi?.0)

        var speed: [EvaluationResults.Speed] = []
        if settings.speedTokens > 0 {
            var seconds: [Double] = []
            for (i, m) in methods.enumerated() {
                seconds.append(try m.decodeSecondsPerToken(tokens: min(settings.speedTokens, c.contextLength - 1), repeats: 5, vocab: c.vocabSize))
                progress("decode speed", i + 1, methods.count)
            }
            speed = zip(methods, seconds).map { m, s in
                EvaluationResults.Speed(method: m.method, exit: m.exit, tokensPerSecond: 1 / s, measuredSpeedup: seconds[0] / s)
            }
        }

        var data: [EvaluationResults.DataFile] = []
        for (file, ids) in texts {
            let bytes = LanguageModelEvaluation.tokenBytes(ids, tokenizer: tokenizer)
            var rows = try LanguageModelEvaluation.evaluate(methods: methods, tokens: ids, tokenBytes: bytes, vocab: c.vocabSize,
                                                            window: settings.window) { progress(file, $0, $1) }
            for i in rows.indices where i < speed.count { rows[i].tokensPerSecond = speed[i].tokensPerSecond }
            data.append(.init(file: file, sha256: try SHA256.hash(contentsOf: URL(fileURLWithPath: file)).hex, tokens: ids.count,
                              bytes: bytes.reduce(0, +), rows: rows))
        }

        var taskResults: [EvaluationResults.Task] = []
        for task in tasks {
            let prefixes = MultipleChoice.fewShotPrefixes(items: task.items, shots: settings.numFewshot, seed: settings.seed)
            var rows: [TaskRow] = []
            let total = task.items.count * methods.count
            for (mi, m) in methods.enumerated() {
                var correct = 0, correctNorm = 0
                for (i, item) in task.items.enumerated() {
                    let r: MultipleChoice.ItemResult
                    do {
                        r = try MultipleChoice.score(item, prefix: prefixes[i], method: m, tokenizer: tokenizer,
                                                     contextLength: c.contextLength, vocab: c.vocabSize)
                    } catch let TaskSet.TaskItemProblem.message(why) {
                        throw EvaluationError.badTaskItem(file: task.path, line: item.line, why)
                    }
                    if r.prediction == item.label { correct += 1 }
                    if r.predictionNorm == item.label { correctNorm += 1 }
                    progress(task.name, mi * task.items.count + i + 1, total)
                }
                let n = Double(task.items.count)
                rows.append(TaskRow(method: m.method, exit: m.exit, cost: m.cost, acc: Double(correct) / n,
                                    accNorm: Double(correctNorm) / n, items: task.items.count))
            }
            taskResults.append(.init(file: task.path, name: task.name, format: task.format,
                                     sha256: try SHA256.hash(contentsOf: URL(fileURLWithPath: task.path)).hex,
                                     items: task.items.count, numFewshot: settings.numFewshot, rows: rows))
        }

        let shortgpt = try bi.map { b, file in
            EvaluationResults.ShortGPT(
                calibrationFile: file, calibrationSHA256: try SHA256.hash(contentsOf: URL(fileURLWithPath: file)).hex, blockInfluence: b,
                removalOrder: b.removalOrder,
                kept: Dictionary(uniqueKeysWithValues: settings.depths.map { ("\($0)", b.keptLayers($0)) }))
        }
        return EvaluationResults(
            model: .init(path: modelPath, fingerprint: ModelFingerprint.compute(base.weights), architecture: c.architecture,
                         layers: c.layerCount, dim: c.dim, vocab: c.vocabSize, context: c.contextLength),
            balconies: try variants.map { v in
                EvaluationResults.Variant(method: v.method, label: v.label, file: v.file,
                                          sha256: try v.file.map { try SHA256.hash(contentsOf: URL(fileURLWithPath: $0)).hex },
                                          initialization: v.initialization, steps: v.steps, tokensSeen: v.tokensSeen, exits: v.model.exits)
            },
            settings: settings, shortgpt: shortgpt, speed: speed, data: data, tasks: taskResults)
    }
}
