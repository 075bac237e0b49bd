import Foundation

/// One multiple-choice question: for each choice a context and the continuation whose
/// log-likelihood is scored after it (the context is the same for every choice except in
/// WinoGrande-style partial scoring).
public struct MultipleChoiceItem: Sendable, Equatable {
    public struct Choice: Sendable, Equatable {
        public var context: String
        public var continuation: String
        /// The text whose UTF-8 length normalizes the log-likelihood for `acc_norm` (the choice
        /// without the delimiter, as the harness does).
        public var normalizer: String
    }

    public var choices: [Choice]
    /// Index of the correct choice.
    public var label: Int
    /// Line of the task file the item came from (for messages).
    public var line: Int = 0

    public init(choices: [Choice], label: Int) {
        self.choices = choices
        self.label = label
    }

    /// The common layout: one context, choices scored as `" " + choice` (the harness's default
    /// `target_delimiter`).
    public init(context: String, choices: [String], label: Int) {
        self.init(choices: choices.map { Choice(context: context, continuation: " " + $0, normalizer: $0) }, label: label)
    }

    /// The gold choice written out in full: a few-shot example.
    public var solvedText: String { choices[label].context + choices[label].continuation }

    func validate() throws {
        guard choices.count >= 2 else { throw TaskSet.TaskItemProblem.message("an item needs at least two choices, this one has \(choices.count)") }
        guard label >= 0, label < choices.count else {
            throw TaskSet.TaskItemProblem.message("label \(label) is out of range for \(choices.count) choices (0..<\(choices.count))")
        }
    }
}

/// Scores multiple-choice items as EleutherAI's lm-evaluation-harness does for `output_type:
/// multiple_choice`: each choice's score is the sum of the log-probabilities of its continuation's
/// tokens given the context; `acc` takes the argmax, `acc_norm` the argmax of the score divided
/// by the choice's length in UTF-8 bytes. Ties go to the first choice (numpy's argmax).
public enum MultipleChoice {
    /// Token ids of a (context, continuation) pair, split as the harness's `_encode_pair` does:
    /// trailing whitespace of the context moves to the continuation, the pair is encoded whole, and the
    /// continuation is what follows the context's own encoding. BOS goes in front when the
    /// tokenizer adds it (the harness with `add_bos_token=True`).
    public static func encodePair(context: String, continuation: String, tokenizer: any Tokenizer) -> (context: [Int], continuation: [Int]) {
        var ctx = context, cont = continuation
        let trimmed = ctx.reversed().prefix { $0.isWhitespace }.count
        if trimmed > 0 {
            cont = String(ctx.suffix(trimmed)) + cont
            ctx = String(ctx.dropLast(trimmed))
        }
        let bos: [Int] = tokenizer.addsBOS ? tokenizer.bosTokenId.map { [$0] } ?? [] : []
        if ctx.isEmpty { return (bos, tokenizer.encode(cont)) }
        let whole = tokenizer.encode(ctx + cont)
        let c = tokenizer.encode(ctx)
        return (bos + c, Array(whole[min(c.count, whole.count)...]))
    }

    /// Sum of `log p(continuation | context)` and whether every continuation token is the
    /// argmax (the harness's `is_greedy`). Sequences longer than `contextLength + 1` lose tokens
    /// from the left, as in the harness.
    public static func logLikelihood(method: EvaluationMethod, context: [Int], continuation: [Int], contextLength: Int,
                                     vocab: Int) throws -> (logLikelihood: Double, isGreedy: Bool) {
        let seq = context + continuation
        let input = Array(seq.suffix(contextLength + 1).dropLast())
        guard !continuation.isEmpty, continuation.count <= input.count else {
            preconditionFailure("a continuation of \(continuation.count) tokens fits the context and has context before it")
        }
        let firstRow = input.count - continuation.count
        var lp = try method.logits(input)
        LanguageModelEvaluation.logSoftmax(&lp, rows: firstRow..<input.count, vocab: vocab)
        var total = 0.0
        var greedy = true
        lp.withUnsafeBufferPointer { p in
            for (j, t) in continuation.enumerated() {
                let row = UnsafeBufferPointer(rebasing: p[((firstRow + j) * vocab)..<((firstRow + j + 1) * vocab)])
                total += Double(row[t])
                if Sampler.argmax(row) != t { greedy = false }
            }
        }
        return (total, greedy)
    }

    /// Few-shot contexts: for item i, `shots` other items drawn with a generator seeded by `seed`
    /// (one generator for the whole task, advanced item by item), written out solved and joined
    /// by blank lines before the item's own context.
    public static func fewShotPrefixes(items: [MultipleChoiceItem], shots: Int, seed: UInt64) -> [String] {
        guard shots > 0, items.count > 1 else { return [String](repeating: "", count: items.count) }
        var rng = SplitMix64(seed: seed)
        return items.indices.map { i in
            var pool = Array(items.indices.filter { $0 != i })
            var picked: [Int] = []
            while picked.count < min(shots, pool.count) {
                let j = Int(rng.next() % UInt64(pool.count))
                picked.append(pool.remove(at: j))
            }
            return picked.map { items[$0].solvedText + "\n\n" }.joined()
        }
    }

    /// Per-item outcome for one method.
    public struct ItemResult: Sendable, Codable, Equatable {
        public var logLikelihoods: [Double]
        public var isGreedy: [Bool]
        public var prediction: Int
        public var predictionNorm: Int
        public var label: Int

        enum CodingKeys: String, CodingKey {
            case logLikelihoods = "loglikelihoods", isGreedy = "is_greedy", prediction, predictionNorm = "prediction_norm", label
        }
    }

    /// Scores one item (with `prefix` before every choice's context).
    public static func score(_ item: MultipleChoiceItem, prefix: String = "", method: EvaluationMethod, tokenizer: any Tokenizer,
                             contextLength: Int, vocab: Int) throws -> ItemResult {
        var lls: [Double] = [], greedy: [Bool] = []
        for c in item.choices {
            let (ctx, cont) = encodePair(context: prefix + c.context, continuation: c.continuation, tokenizer: tokenizer)
            guard !cont.isEmpty else { throw TaskSet.TaskItemProblem.message("a choice encodes to no tokens") }
            guard cont.count <= contextLength, ctx.count + cont.count >= 2 else {
                throw TaskSet.TaskItemProblem.message("a continuation of \(cont.count) tokens does not fit the model's context of \(contextLength)")
            }
            let r = try logLikelihood(method: method, context: ctx, continuation: cont, contextLength: contextLength, vocab: vocab)
            lls.append(r.logLikelihood)
            greedy.append(r.isGreedy)
        }
        let norm = zip(lls, item.choices).map { $0 / Double(max(1, $1.normalizer.utf8.count)) }
        return ItemResult(logLikelihoods: lls, isGreedy: greedy, prediction: argmax(lls), predictionNorm: argmax(norm), label: item.label)
    }

    /// First index of the largest value (numpy's tie rule).
    static func argmax(_ v: [Double]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }
}

/// Accuracy of one method on one task (a row of `results.json`'s `tasks[].rows`).
public struct TaskRow: Sendable, Codable, Equatable {
    public var method: String
    @NullWhenAbsent public var exit: Int?
    public var cost: Double
    public var acc: Double
    public var accNorm: Double
    public var items: Int

    enum CodingKeys: String, CodingKey { case method, exit, cost, acc, accNorm = "acc_norm", items }
}
