import Foundation

/// Language-model quality of one method on one text, against the full model (a row of
/// `results.json`).
public struct LanguageModelRow: Sendable, Codable, Equatable {
    /// `EvaluationMethod.method`: "full", "balcony", "balcony:LABEL", "early-exit", "shortgpt".
    public var method: String
    /// Exit depth, null for the full model.
    @NullWhenAbsent public var exit: Int?
    /// Fraction of the full model's per-token cost (bytes of weights read per decoded token).
    public var cost: Double
    /// exp(mean NLL per token).
    public var perplexity: Double
    /// Total NLL in bits over the UTF-8 bytes of the scored text (tokenizer-independent).
    public var bitsPerByte: Double
    /// Mean KL(full || this) per token, nats.
    public var kl: Double
    /// Fraction of positions whose argmax equals the full model's.
    public var agreement: Double
    /// Mean negative log-likelihood per token, nats.
    public var meanNLL: Double
    /// Tokens scored.
    public var tokens: Int
    /// UTF-8 bytes those tokens decode to.
    public var bytes: Int
    /// Measured greedy decode tokens/s (nil when speed was not measured).
    public var tokensPerSecond: Double?

    enum CodingKeys: String, CodingKey {
        case method, exit, cost, perplexity, bitsPerByte = "bits_per_byte", kl, agreement, meanNLL = "mean_nll", tokens, bytes
        case tokensPerSecond = "tokens_per_s"
    }
}

/// Running sums behind a `LanguageModelRow`: NLL, KL from the full model, argmax agreement, bytes.
public struct LanguageModelTally: Sendable, Equatable {
    public var nll = 0.0
    public var kl = 0.0
    public var agree = 0
    public var tokens = 0
    public var bytes = 0

    public init() {}

    /// Adds one position: `full` and `method` are log-probabilities over the vocabulary (`vocab`
    /// entries each), `target` the token that came next, `bytes` the UTF-8 bytes it decodes to.
    public mutating func add(full: UnsafePointer<Float>, method: UnsafePointer<Float>, vocab: Int, target: Int, bytes: Int) {
        nll -= Double(method[target])
        var d = 0.0
        var fullArg = 0, methodArg = 0
        for v in 0..<vocab {
            d += Double(expf(full[v])) * Double(full[v] - method[v])
            if full[v] > full[fullArg] { fullArg = v }
            if method[v] > method[methodArg] { methodArg = v }
        }
        kl += d
        if fullArg == methodArg { agree += 1 }
        tokens += 1
        self.bytes += bytes
    }

    public func row(method: String, exit: Int?, cost: Double) -> LanguageModelRow {
        let n = Double(max(tokens, 1))
        return LanguageModelRow(method: method, exit: exit, cost: cost, perplexity: exp(nll / n),
                                bitsPerByte: bytes > 0 ? nll / log(2) / Double(bytes) : .nan,
                                kl: kl / n, agreement: Double(agree) / n, meanNLL: nll / n, tokens: tokens, bytes: bytes)
    }
}

/// Perplexity, bits per byte, KL from the full model and top-1 agreement of several methods on one
/// token sequence, over the windows `balcony score` uses (`Perplexity.windows`), so the full
/// model's perplexity here is exactly exp of `balcony score`'s mean NLL.
public enum LanguageModelEvaluation {
    /// `tokenBytes[i]`: UTF-8 bytes token `i` adds to the decoded text (0 for BOS). `progress` is
    /// told the positions scored so far, out of `tokens.count - 1`, per method pass.
    public static func evaluate(methods: [EvaluationMethod], tokens: [Int], tokenBytes: [Int], vocab: Int, window: Int,
                                progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> [LanguageModelRow] {
        precondition(tokenBytes.count == tokens.count, "one byte count per token")
        guard let full = methods.first(where: { $0.method == "full" }) else {
            preconditionFailure("the full model is the reference of every comparison")
        }
        var tallies = [LanguageModelTally](repeating: LanguageModelTally(), count: methods.count)
        var done = 0
        let total = max(tokens.count - 1, 0) * methods.count
        for w in Perplexity.windows(count: tokens.count, window: window) {
            let win = Array(tokens[w.range])
            // Row j of a window's logits predicts position begin + j + 1: only the scored rows matter.
            let rows = (w.scored.lowerBound - w.range.lowerBound - 1)..<(w.scored.upperBound - w.range.lowerBound - 1)
            var fullLP = try full.logits(win)
            logSoftmax(&fullLP, rows: rows, vocab: vocab)
            for (m, method) in methods.enumerated() {
                var lp = fullLP
                if method.method != "full" {
                    lp = try method.logits(win)
                    logSoftmax(&lp, rows: rows, vocab: vocab)
                }
                fullLP.withUnsafeBufferPointer { f in
                    lp.withUnsafeBufferPointer { q in
                        for pos in w.scored {
                            let row = (pos - w.range.lowerBound - 1) * vocab
                            tallies[m].add(full: f.baseAddress! + row, method: q.baseAddress! + row, vocab: vocab,
                                           target: tokens[pos], bytes: tokenBytes[pos])
                        }
                    }
                }
                done += w.scored.count
                progress(done, total)
            }
        }
        return zip(methods, tallies).map { $1.row(method: $0.method, exit: $0.exit, cost: $0.cost) }
    }

    /// Log-softmax, in place, of the rows `rows` of `logits[_, vocab]` (the others are left as they are).
    static func logSoftmax(_ logits: inout [Float], rows: Range<Int>, vocab: Int) {
        logits.withUnsafeMutableBufferPointer { l in
            for r in rows { Kernels.logSoftmax(l.baseAddress! + r * vocab, vocab, out: l.baseAddress! + r * vocab) }
        }
    }

    /// Bytes each token adds to the decoded text, following the tokenizer's decoding rules.
    public static func tokenBytes(_ tokens: [Int], tokenizer: any Tokenizer) -> [Int] {
        tokens.indices.map { i in tokenizer.bytes(for: tokens[i], previous: i > 0 ? tokens[i - 1] : nil).count }
    }
}

/// An optional that is written as JSON `null` when absent instead of being left out, so every row
/// of `results.json` lists the same keys (`"exit": null` for the full model).
@propertyWrapper
public struct NullWhenAbsent<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}
