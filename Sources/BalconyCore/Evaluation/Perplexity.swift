import Foundation

/// Per-token negative log-likelihoods of a text, the basis of perplexity.
public struct TokenScores: Sendable, Codable {
    /// The scored token ids (every token of the text but the first, which has no context).
    public var tokens: [Int]
    /// `-log p(tokens[i] | everything before it)`, nats.
    public var nll: [Double]

    public var meanNLL: Double { nll.isEmpty ? 0 : nll.reduce(0, +) / Double(nll.count) }
    public var perplexity: Double { exp(meanNLL) }
}

/// Scores token sequences with a model; sequences longer than the context are scored in
/// overlapping windows (stride half a context) so every token after the first window still sees
/// at least half a context of history, as in Hugging Face's perplexity guide.
public enum Perplexity {
    public static func score(model: LlamaModel, tokens: [Int], window: Int? = nil) throws -> TokenScores {
        let ctx = min(window ?? model.config.contextLength, model.config.contextLength)
        return try score(tokens: tokens, window: ctx) { try model.tokenLogProbabilities(tokens: $0) }
    }

    /// The same windows over any `logProbabilities(window) -> log p of tokens 1..<n` function (an exit, say).
    public static func score(tokens: [Int], window: Int, logProbabilities: ([Int]) throws -> [Float]) throws -> TokenScores {
        var result = TokenScores(tokens: [], nll: [])
        for w in windows(count: tokens.count, window: window) {
            let lp = try logProbabilities(Array(tokens[w.range]))
            // lp[j] scores tokens[begin + j + 1]
            for pos in w.scored {
                result.tokens.append(tokens[pos])
                result.nll.append(-Double(lp[pos - w.range.lowerBound - 1]))
            }
        }
        return result
    }

    /// One window of a long sequence: the positions it runs, and those it scores (the ones no
    /// earlier window scored; each has at least half a context of history after the first window).
    public struct Window: Sendable, Equatable {
        public var range: Range<Int>
        public var scored: Range<Int>
    }

    /// The windows `score` uses over `count` tokens: length `window`, stride half a window; every
    /// position but the first is scored exactly once.
    public static func windows(count: Int, window: Int) -> [Window] {
        guard count >= 2 else { return [] }
        let ctx = max(2, window)
        let stride = max(1, ctx / 2)
        var out: [Window] = []
        var begin = 0
        var scoredUpTo = 1  // tokens[0] is never scored
        while scoredUpTo < count {
            let end = min(count, begin + ctx)
            out.append(Window(range: begin..<end, scored: scoredUpTo..<end))
            scoredUpTo = end
            if end == count { break }
            begin += stride
        }
        return out
    }
}
