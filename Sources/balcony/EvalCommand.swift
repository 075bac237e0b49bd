import ArgumentParser
import BalconyCore
import Foundation

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Every exit against the full model and the baselines: perplexity, bits per byte, KL, agreement, cost, tasks.",
        discussion: """
            Scores the full model, every exit of every balcony file, and the baselines at the same depths (early exit:
            the first k layers read out through the final norm and head; ShortGPT: the k layers with the highest Block
            Influence) on text files (--data) and multiple-choice tasks (--tasks: JSON Lines with context/choices/label,
            or the published HellaSwag, ARC, PIQA and WinoGrande layouts; force one with FORMAT:PATH). With --out DIR,
            writes DIR/results.json, DIR/report.md and DIR/quality-vs-cost.svg. See docs/evaluation.md.
            """)

    @OptionGroup var options: ModelOptions
    @Option(parsing: .upToNextOption, help: "Balcony files; the first is the 'balcony' series, the others 'balcony:LABEL' variants.")
    var balconies: [String] = []
    @Option(help: "Labels of the balcony files after the first, comma-separated (default: from each file's init and training tokens).")
    var labels: String?
    @Option(help: ArgumentHelp("Element types to run the balcony files in, comma-separated (f32, q8_0, q5_1, q5_0, q4_1, q4_0, base): each file is evaluated once per type, as variants 'LABEL@TYPE'.",
                               valueName: "types"))
    var balconyTypes: String = "f32"
    @Option(help: "Also evaluate untrained balconies at these exits, copies of the last layer (the authors' init).")
    var copyInitExits: String?
    @Option(help: "Also evaluate untrained randomly initialized balconies at these exits.")
    var randomInitExits: String?
    @Option(parsing: .upToNextOption, help: "Text files to evaluate on.") var data: [String] = []
    @Option(parsing: .upToNextOption, help: "Multiple-choice task files (JSON Lines), optionally FORMAT:PATH.") var tasks: [String] = []
    static let defaultBaselines = "early-exit,shortgpt"
    @Option(help: "Baselines: early-exit, shortgpt, both comma-separated, or none.") var baselines: String = defaultBaselines
    @Flag(help: .hidden) var noBaseline = false
    @Option(help: "Depths of the baselines (default: the balconies' exits, or every depth without balconies).") var exits: String?
    @Option(help: "Evaluate at most this many tokens per data file.") var maxTokens: Int = 20000
    @Option(help: "Window of the perplexity passes (default: the model's context).") var window: Int?
    @Option(help: "Few-shot examples per task item, drawn from the same file.") var numFewshot: Int = 0
    @Option(help: "Seed of the few-shot draws.") var seed: UInt64 = 1234
    @Option(help: "Calibration text of ShortGPT's Block Influence (default: the first --data file).") var calibration: String?
    @Option(help: "Calibration tokens for Block Influence.") var calibrationTokens: Int = 4096
    @Option(help: "Greedy decode steps per method to measure tokens/s (0 = skip).") var speedTokens: Int = 128
    @Option(help: "Write results.json, report.md and quality-vs-cost.svg into this folder.") var out: String?
    @Flag(help: "Print results.json to stdout instead of the report.") var json = false

    func validate() throws {
        if data.isEmpty && tasks.isEmpty { throw ValidationError("give text files with --data and/or task files with --tasks") }
        if maxTokens < 2 { throw ValidationError("--max-tokens must be at least 2") }
        if numFewshot < 0 { throw ValidationError("--num-fewshot must not be negative") }
        if speedTokens < 0 { throw ValidationError("--speed-tokens must not be negative") }
        if let w = window, w < 2 { throw ValidationError("--window must be at least 2") }
        do { _ = try parsedBalconyTypes() } catch { throw ValidationError("--balcony-types: \(error.localizedDescription)") }
    }

    func parsedBalconyTypes() throws -> [BalconyWeightType] {
        try balconyTypes.split(separator: ",").map { try BalconyWeightType(parsing: $0.trimmingCharacters(in: .whitespaces)) }
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load()
            let tok = try rt.requiredTokenizer
            let c = rt.model.config
            var chosenBaselines = noBaseline ? [] : try Baseline.parseList(baselines)
            if calibration == nil && data.isEmpty && chosenBaselines.contains(.shortGPT) {
                // Block Influence needs text; the default list quietly drops ShortGPT without it.
                guard baselinesDefaulted else {
                    throw ValidationError("the shortgpt baseline needs calibration text: pass --calibration FILE (or --data)")
                }
                printError("note: no --data or --calibration text for ShortGPT's Block Influence; evaluating without the shortgpt baseline")
                chosenBaselines.removeAll { $0 == .shortGPT }
            }
            let variants = try loadVariants(rt)
            let depths = try exits.map(parseExitList) ?? {
                let trained = Set(variants.flatMap { $0.model.exits }).sorted()
                return trained.isEmpty ? Array(1..<c.layerCount) : trained
            }()
            for k in depths where k < 1 || k >= c.layerCount { throw BalconyError.exitOutOfRange(k, layers: c.layerCount) }
            let settings = EvaluationSettings(
                maxTokens: maxTokens, window: min(window ?? c.contextLength, c.contextLength), baselines: chosenBaselines, depths: depths,
                numFewshot: numFewshot, seed: seed, speedTokens: speedTokens, calibrationFile: calibration ?? data.first,
                calibrationTokens: calibrationTokens, threads: ComputeThreads.count)
            let suite = EvaluationSuite(base: rt.model, modelPath: rt.path, tokenizer: tok, variants: variants, settings: settings)
            let bar = ProgressBar()
            let results = try suite.run(dataFiles: data, taskFiles: tasks) { stage, done, total in
                bar.update(URL(fileURLWithPath: stage).lastPathComponent, done: Int64(done), total: Int64(total), unit: .count, force: done == total)
            }
            bar.finish()
            let report = EvaluationReport.markdown(results, chartFiles: out == nil ? [] : chartNames(results).map(\.name))
            if let out {
                let dir = URL(fileURLWithPath: out)
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try AtomicFileWriter.write(Data(try jsonLine(results).utf8), to: dir.appendingPathComponent("results.json"))
                try AtomicFileWriter.write(Data(report.utf8), to: dir.appendingPathComponent("report.md"))
                for (name, chart) in chartNames(results) {
                    try AtomicFileWriter.write(Data(chart.svg().utf8), to: dir.appendingPathComponent(name))
                }
                printError("wrote \(dir.appendingPathComponent("results.json").path), report.md and \(chartNames(results).map(\.name).joined(separator: ", "))")
            }
            print(json ? try jsonLine(results) : report)
        }
    }

    /// quality-vs-cost.svg for the first data file (or the first task without data), then one
    /// chart per further file and task.
    func chartNames(_ r: EvaluationResults) -> [(name: String, chart: QualityCostChart)] {
        var charts = r.data.map { QualityCostChart.perplexity($0) } + r.tasks.map { QualityCostChart.accuracy($0) }
        let names = r.data.map { URL(fileURLWithPath: $0.file).deletingPathExtension().lastPathComponent } + r.tasks.map(\.name)
        guard !charts.isEmpty else { return [] }
        var out = [(name: "quality-vs-cost.svg", chart: charts.removeFirst())]
        var used: Set<String> = []
        for (name, chart) in zip(names.dropFirst(), charts) {
            var slug = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
            while used.contains(slug) { slug += "_" }
            used.insert(slug)
            out.append(("quality-vs-cost-\(slug).svg", chart))
        }
        return out
    }

    var baselinesDefaulted: Bool { !CommandLine.arguments.contains("--baselines") }

    func loadVariants(_ rt: LoadedRuntime) throws -> [BalconyVariant] {
        let given = labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        var out: [BalconyVariant] = []
        let types = try parsedBalconyTypes()
        var files = 0
        func add(_ label: String, file: String?, params: [BalconyParameters], initialization: String, steps: Int, tokens: Int) throws {
            let named = files > 0 && files - 1 < given.count ? given[files - 1] : label
            files += 1
            // Untrained balconies are only reference points: F32 is enough for them.
            for type in file == nil ? [.f32] : types {
                let i = out.count
                let model = try BalconyOptions.noteKept(BalconyModel(base: rt.model, balconies: params, source: file ?? named, weightType: type))
                var label = file != nil && types.count > 1 ? "\(named)@\(model.weightType)" : named
                while out.contains(where: { $0.label == label }) { label += "+" }
                out.append(BalconyVariant(method: i == 0 ? "balcony" : "balcony:\(label)", label: label, file: file, model: model,
                                          initialization: initialization, steps: steps, tokensSeen: tokens))
            }
        }
        for file in balconies {
            let loaded = try BalconyFile.read(from: URL(fileURLWithPath: file), base: rt.model.weights)
            for note in loaded.notes { printError("note: \(note)") }
            let info = loaded.info
            try add(BalconyVariant.describe(initialization: info.initialization.rawValue, tokensSeen: info.tokensSeen), file: file,
                    params: loaded.balconies, initialization: info.initialization.rawValue, steps: info.step, tokens: info.tokensSeen)
        }
        if let list = copyInitExits {
            let params = try parseExitList(list).map { try BalconyParameters.copyInitialized(from: rt.model.weights, exit: $0) }
            try add("copy-untrained", file: nil, params: params, initialization: "copy", steps: 0, tokens: 0)
        }
        if let list = randomInitExits {
            let params = try parseExitList(list).map { BalconyParameters.randomInitialized(config: rt.model.config, exit: $0, seed: UInt64($0)) }
            try add("random-untrained", file: nil, params: params, initialization: "random", steps: 0, tokens: 0)
        }
        return out
    }
}
