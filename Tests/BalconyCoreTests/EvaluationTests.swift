import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import BalconyCore

/// `balcony eval`'s pieces: metrics against hand-computed values and `balcony score`'s windows,
/// multiple-choice scoring against lm-evaluation-harness rules run on transformers, Block
/// Influence against an independent computation (scripts/make_eval_fixtures.py), the chart.
@Suite struct EvaluationTests {
    static let fixtures = ModelFixtures.root.appendingPathComponent("eval")

    struct Expected: Decodable {
        struct Choice: Decodable {
            var context: String
            var continuation: String
            var context_ids: [Int]
            var continuation_ids: [Int]
            var loglikelihood: Double
            var is_greedy: Bool
        }
        struct Item: Decodable {
            var label: Int
            var choices: [Choice]
            var acc_choice: Int
            var acc_norm_choice: Int
        }
        struct Task: Decodable {
            var format: String
            var num_fewshot: Int
            var seed: UInt64
            var items: [Item]
            var acc: Double
            var acc_norm: Double
        }
        struct BI: Decodable {
            var tokens: Int
            var window: Int
            var scores: [Double]
            var removal_order: [Int]
            var kept: [String: [Int]]
        }
        var tasks: [String: Task]
        var block_influence: BI
    }

    static let expected: Expected = try! JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("expected.json")))

    /// stories260K and its tokenizer, loaded once.
    static let stories: (LlamaModel, any Tokenizer) = {
        let loaded = try! ModelLoader.load(path: BalconyTestSupport.stories.path)
        return (try! LlamaModel(weights: loaded.weights), try! TokenizerLoader.load(url: BalconyTestSupport.storiesTokenizer))
    }()

    // MARK: Metrics

    /// KL, agreement, NLL and bits per byte of two positions, worked out by hand.
    @Test func tallyMatchesHandComputedCase() {
        let p: [Float] = [0.5, 0.3, 0.2], q: [Float] = [0.2, 0.5, 0.3]
        let full = p.map { Float(log(Double($0))) }, method = q.map { Float(log(Double($0))) }
        var t = LanguageModelTally()
        full.withUnsafeBufferPointer { f in
            method.withUnsafeBufferPointer { m in
                t.add(full: f.baseAddress!, method: m.baseAddress!, vocab: 3, target: 1, bytes: 3)   // argmax 0 vs 1: disagree
                t.add(full: f.baseAddress!, method: f.baseAddress!, vocab: 3, target: 0, bytes: 1)   // same distribution
            }
        }
        let kl1 = 0.5 * log(0.5 / 0.2) + 0.3 * log(0.3 / 0.5) + 0.2 * log(0.2 / 0.3)   // 0.2332...
        let row = t.row(method: "m", exit: 1, cost: 0.5)
        #expect(abs(row.kl - kl1 / 2) < 1e-6)
        #expect(row.agreement == 0.5)
        let nll = -log(0.5) - log(0.5)
        #expect(abs(row.meanNLL - nll / 2) < 1e-6)
        #expect(abs(row.perplexity - exp(nll / 2)) < 1e-5)
        #expect(abs(row.bitsPerByte - nll / log(2) / 4) < 1e-6)
        #expect(row.tokens == 2 && row.bytes == 4)
    }

    /// The full model's perplexity is exp of `Perplexity.score`'s mean NLL (what `balcony score`
    /// prints), over the same overlapping windows; an early exit at full depth is the full model.
    @Test func perplexityMatchesScoreWindows() throws {
        let c = TinyModels.config(layers: 3)
        let model = try LlamaModel(weights: TinyModels.weights(c), threads: 1)
        let tokens = (0..<150).map { ($0 * 37 + 11) % c.vocabSize }
        let bytes = tokens.map { $0 % 3 + 1 }
        let balconies = try BalconyModel(base: model, balconies: [.randomInitialized(config: c, exit: 1, seed: 3)])
        let costs = ExitCostModel(balconies)
        let methods: [EvaluationMethod] = [.full(model), .balcony(balconies, exit: 1), .earlyExit(model, exit: 1, costs: costs),
                                           .subset(model, method: "all-layers", exit: 3, layers: [0, 1, 2], cost: 1)]
        let rows = try LanguageModelEvaluation.evaluate(methods: methods, tokens: tokens, tokenBytes: bytes, vocab: c.vocabSize, window: 40)
        let score = try Perplexity.score(model: model, tokens: tokens, window: 40)
        #expect(abs(rows[0].meanNLL - score.meanNLL) < 1e-6)
        #expect(abs(rows[0].perplexity - score.perplexity) < 1e-4 * score.perplexity)
        #expect(rows[0].tokens == 149 && rows[0].bytes == bytes.dropFirst().reduce(0, +))
        #expect(rows[0].kl == 0 && rows[0].agreement == 1)
        let exitScore = try Perplexity.score(tokens: tokens, window: 40) { try balconies.tokenLogProbabilities(tokens: $0, exit: .exit(1)) }
        #expect(abs(rows[1].meanNLL - exitScore.meanNLL) < 1e-6)
        #expect(abs(rows[3].meanNLL - score.meanNLL) < 1e-6 && rows[3].kl < 1e-6 && rows[3].agreement == 1)
        #expect(rows[2].kl > 0)
    }

    /// Decoding one token at a time over a layer subset gives the logits of one prefill over it.
    @Test func layerSubsetDecodeMatchesPrefill() throws {
        let c = TinyModels.config(layers: 4)
        let model = try LlamaModel(weights: TinyModels.weights(c), threads: 1)
        let tokens = [1, 5, 9, 33, 2, 60, 17]
        for layers in [[0, 2, 3], [1], [0, 1, 2, 3]] {
            let prefill = try model.forward(tokens, cache: model.makeCache(), layers: layers, outputs: .all)
            let step = EvaluationMethod.subset(model, method: "x", exit: layers.count, layers: layers, cost: 0).decoder(16)
            for (i, t) in tokens.enumerated() {
                let logits = try step(t)
                let row = Array(prefill[(i * c.vocabSize)..<((i + 1) * c.vocabSize)])
                #expect(zip(logits, row).map { abs($0 - $1) }.max()! < 1e-4, "\(layers) position \(i)")
            }
        }
        #expect(throws: LayerSubsetError.self) { try model.forward(tokens, cache: model.makeCache(), layers: [2, 1]) }
        #expect(try model.forward(tokens, cache: model.makeCache(), layers: [0, 1, 2, 3]) == (try model.forward(tokens, cache: model.makeCache())))
    }

    // MARK: Multiple choice against the harness rules on transformers

    static let taskFiles = ["generic.jsonl", "hellaswag.jsonl", "arc.jsonl", "arc-hf.jsonl", "piqa.jsonl", "winogrande.jsonl"]

    @Test(arguments: taskFiles + ["generic.jsonl@2-shot"])
    func multipleChoiceMatchesHarness(_ key: String) throws {
        let (model, tok) = Self.stories
        let exp = try #require(Self.expected.tasks[key])
        let task = try TaskSet.load(Self.fixtures.appendingPathComponent(String(key.split(separator: "@")[0])).path)
        #expect(task.format.rawValue == (exp.format == "generic" ? "jsonl" : exp.format))
        #expect(task.items.count == exp.items.count)
        let prefixes = MultipleChoice.fewShotPrefixes(items: task.items, shots: exp.num_fewshot, seed: exp.seed)
        let full = EvaluationMethod.full(model)
        var correct = 0, correctNorm = 0
        for (i, (item, e)) in zip(task.items, exp.items).enumerated() {
            #expect(item.label == e.label, "item \(i)")
            for (choice, ec) in zip(item.choices, e.choices) {
                #expect(prefixes[i] + choice.context == ec.context, "item \(i)")
                #expect(choice.continuation == ec.continuation, "item \(i)")
                let (ctx, cont) = MultipleChoice.encodePair(context: prefixes[i] + choice.context, continuation: choice.continuation, tokenizer: tok)
                #expect(ctx == ec.context_ids && cont == ec.continuation_ids, "item \(i)")
            }
            let r = try MultipleChoice.score(item, prefix: prefixes[i], method: full, tokenizer: tok, contextLength: 512, vocab: 512)
            for (ll, ec) in zip(r.logLikelihoods, e.choices) {
                #expect(abs(ll - ec.loglikelihood) < 2e-3, "item \(i): \(ll) vs \(ec.loglikelihood)")
            }
            #expect(r.isGreedy == e.choices.map(\.is_greedy), "item \(i)")
            #expect(r.prediction == e.acc_choice && r.predictionNorm == e.acc_norm_choice, "item \(i)")
            if r.prediction == item.label { correct += 1 }
            if r.predictionNorm == item.label { correctNorm += 1 }
        }
        #expect(Double(correct) / Double(task.items.count) == exp.acc)
        #expect(Double(correctNorm) / Double(task.items.count) == exp.acc_norm)
    }

    /// Block Influence of stories260K's layers over held-out text, against forward hooks on
    /// transformers' decoder layers.
    @Test func blockInfluenceMatchesIndependentComputation() throws {
        let (model, tok) = Self.stories
        let e = Self.expected.block_influence
        let text = try String(contentsOf: ModelFixtures.shared.appendingPathComponent("data/tinystories/heldout.txt"), encoding: .utf8)
        let ids = Array(tok.encodeForModel(text).prefix(e.tokens))
        let bi = try BlockInfluence.measure(model: model, tokens: ids, window: e.window)
        #expect(bi.tokens == e.tokens)
        for (a, b) in zip(bi.scores, e.scores) { #expect(abs(a - b) < 1e-4, "\(bi.scores) vs \(e.scores)") }
        #expect(bi.removalOrder == e.removal_order)
        for (k, kept) in e.kept { #expect(bi.keptLayers(Int(k)!) == kept, "k = \(k)") }
    }

    // MARK: Task files

    @Test func taskFormatIsDetectedOrForced() throws {
        let temp = try TemporaryDirectory()
        let f = temp.file("t.jsonl")
        try #"{"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0}"#.write(to: f, atomically: true, encoding: .utf8)
        #expect(try TaskSet.load(f.path).format == .piqa)
        #expect(try TaskSet.load("piqa:" + f.path).items[0].choices[1].continuation == " eat the lid")
        #expect(TaskSet.hellaswagPreprocess(" A [title] B [step] c  d ") == "A. B c d")
        #expect(TaskSet.pythonCapitalize("tHE dog") == "The dog")
    }

    @Test(arguments: [
        (#"{"context": "a", "choices": ["b", "c"], "label": 2}"#, "bad.jsonl:1: label 2 is out of range for 2 choices"),
        (#"{"context": "a", "choices": ["b", "c"], "label": 0}"# + "\n" + #"{"context": "a", "choices": ["b"], "label": 0}"#, ":2: an item needs at least two choices"),
        (#"{"context": "a", "choices": ["b", "c"]}"#, "missing integer field \"label\""),
        (#"{"question": {"stem": "q", "choices": [{"text": "x", "label": "A"}]}, "answerKey": "E"}"#, "answerKey \"E\" is none of the choice labels"),
        (#"{"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}"#, "has no \"_\""),
        (#"{"foo": 1}"#, "match no known layout"),
        ("not json", "not a JSON object"),
        ("", "holds no multiple-choice items"),
        (#"{"goal": "g", "sol1": "a", "sol2": "b"}"#, "need the published labels file"),
    ])
    func badTaskFilesAreClearErrors(_ text: String, _ message: String) throws {
        let temp = try TemporaryDirectory()
        let f = temp.file("bad.jsonl")
        try text.write(to: f, atomically: true, encoding: .utf8)
        do {
            _ = try TaskSet.load(f.path)
            Issue.record("accepted \(text)")
        } catch let e as EvaluationError {
            #expect(e.localizedDescription.contains(message), "\(e.localizedDescription)")
            #expect(e.localizedDescription.contains(f.path))
        }
    }

    @Test func fewShotDrawsAreSeededAndExcludeTheItem() {
        let items = (0..<6).map { MultipleChoiceItem(context: "q\($0)", choices: ["a\($0)", "b\($0)"], label: 0) }
        let a = MultipleChoice.fewShotPrefixes(items: items, shots: 3, seed: 7)
        #expect(a == MultipleChoice.fewShotPrefixes(items: items, shots: 3, seed: 7))
        #expect(a != MultipleChoice.fewShotPrefixes(items: items, shots: 3, seed: 8))
        for (i, p) in a.enumerated() {
            #expect(p.components(separatedBy: "\n\n").count == 4)
            #expect(!p.contains("q\(i) a\(i)"))
        }
    }

    // MARK: Chart

    final class SeriesCounter: NSObject, XMLParserDelegate {
        var methods: [String] = []
        var polylines = 0
        var root = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root.isEmpty { root = name }
            if name == "g", attributes["class"] == "series" { methods.append(attributes["data-method"] ?? "") }
            if name == "polyline" { polylines += 1 }
        }
    }

    @Test func chartIsXMLWithOneSeriesPerMethod() throws {
        func row(_ m: String, _ k: Int?, _ cost: Double, _ ppl: Double) -> LanguageModelRow {
            LanguageModelRow(method: m, exit: k, cost: cost, perplexity: ppl, bitsPerByte: 1, kl: 0, agreement: 1, meanNLL: log(ppl),
                             tokens: 10, bytes: 20)
        }
        let rows = [row("full", nil, 1, 4), row("balcony", 1, 0.4, 30), row("early-exit", 1, 0.3, 9000), row("shortgpt", 1, 0.3, 5000),
                    row("balcony", 3, 0.8, 6), row("early-exit", 3, 0.7, 40), row("shortgpt", 3, 0.7, 60), row("balcony:random-<1M>", 3, 0.8, 9)]
        let chart = QualityCostChart.perplexity(.init(file: "/x/heldout.txt", sha256: "", tokens: 10, bytes: 20, rows: rows))
        #expect(chart.logScale)
        let svg = chart.svg()
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = SeriesCounter()
        parser.delegate = counter
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(counter.root == "svg")
        #expect(counter.methods == ["full", "balcony", "early-exit", "shortgpt", "balcony:random-<1M>"])
        #expect(counter.polylines == 5)
        #expect(!svg.contains("<script") && !svg.contains("href") && !svg.contains("@import"))
        #expect(QualityCostChart.logTicks(3.9, 9000).first! <= 3.9 && QualityCostChart.logTicks(3.9, 9000).last! >= 9000)
        let ticks = QualityCostChart.linearTicks(0.2, 0.8)
        #expect(ticks.count == 4 && zip(ticks, [0.2, 0.4, 0.6, 0.8]).allSatisfy { abs($0 - $1) < 1e-9 }, "\(ticks)")
        #expect(QualityCostChart.tickLabel(0.6000000000000001) == "0.6")
    }
}
