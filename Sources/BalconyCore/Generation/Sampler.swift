import Foundation

/// Sampling settings. A temperature below `greedyBelow` (0 included) is greedy (argmax).
public struct SamplingParameters: Sendable, Equatable {
    /// Temperatures below this sample greedily. Dividing logits by a smaller one overflows Float
    /// for ordinary logits (1e-45 turns every probability into NaN), and at 1e-3 a logit gap of
    /// 0.1 already gives odds of e^100: the draw is argmax in all but name.
    public static let greedyBelow: Float = 1e-3

    public var temperature: Float
    /// Keep only the k most likely tokens (0 = off).
    public var topK: Int
    /// Nucleus sampling: the smallest set of tokens whose probability reaches `topP` (1 = off).
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingParameters(temperature: 0)

    /// Whether the sampler takes the argmax (see `greedyBelow`).
    public var isGreedy: Bool { !(temperature >= Self.greedyBelow) }

    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw GenerationError.invalidParameter("temperature must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw GenerationError.invalidParameter("top-k must be >= 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw GenerationError.invalidParameter("top-p must be in (0, 1], got \(topP)") }
    }
}

/// llama2.c's xorshift generator, so that a seed gives the same stream here as in `run.c`.
public struct XorShiftRNG: Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    public mutating func nextUInt32() -> UInt32 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return UInt32(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 32)
    }

    /// Uniform in [0, 1).
    public mutating func nextFloat() -> Float { Float(nextUInt32() >> 8) / 16_777_216.0 }
}

/// Picks the next token from logits: greedy, or temperature with optional top-k and top-p, in
/// llama2.c's order (scale by temperature, softmax, then nucleus over the sorted candidates).
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: XorShiftRNG

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = XorShiftRNG(seed: parameters.seed)
    }

    /// The index of the largest logit. NaN logits are never chosen (a NaN compares false, so it
    /// never beats the running best); when no logit is a number, index 0.
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = -1
        var bestValue = -Float.infinity
        for i in 0..<logits.count where logits[i] > bestValue || (best < 0 && logits[i] == bestValue) {
            bestValue = logits[i]
            best = i
        }
        return max(best, 0)
    }

    /// Why `logits` cannot be sampled from, or nil when they can: a model that produces NaN or
    /// +infinity (damaged weights, an overflow) has stopped computing anything meaningful, and
    /// sampling from the rest would emit plausible-looking garbage. Generation loops check this
    /// and throw instead of emitting a token.
    public static func problem(with logits: [Float]) -> String? {
        var nan = 0, posInf = 0, firstBad = -1, usable = 0
        for (i, v) in logits.enumerated() {
            if v.isNaN { nan += 1 } else if v == .infinity { posInf += 1 } else if v > -.infinity { usable += 1; continue } else { continue }
            if firstBad < 0 { firstBad = i }
        }
        if nan > 0 || posInf > 0 {
            return "the model produced \(nan) NaN and \(posInf) infinite logits (first at token id \(firstBad)) out of \(logits.count); its weights are damaged or overflow"
        }
        if usable == 0 { return "every one of the model's \(logits.count) logits is -infinity; no token can be chosen" }
        return nil
    }

    /// Probabilities the sampler draws from (after temperature, top-k and top-p), for speculative
    /// decoding's acceptance rule. Greedy gives a one-hot distribution. Always a distribution
    /// (finite, non-negative, summing to 1), whatever the logits: NaN counts as -infinity, and
    /// +infinity (or a logit that overflows when divided by the temperature) shares all the
    /// probability with the other infinite ones.
    public func distribution(_ logits: [Float]) -> [Float] {
        let n = logits.count
        var p = [Float](repeating: 0, count: n)
        guard n > 0 else { return p }
        if parameters.isGreedy {
            p[logits.withUnsafeBufferPointer { Self.argmax($0) }] = 1
            return p
        }
        let inv = 1 / parameters.temperature
        var m = -Float.infinity
        for i in 0..<n {
            let x = logits[i].isNaN ? -Float.infinity : logits[i] * inv
            p[i] = x
            if x > m { m = x }
        }
        if m == .infinity {
            let infinite = Float(p.reduce(0) { $0 + ($1 == .infinity ? 1 : 0) })
            for i in 0..<n { p[i] = p[i] == .infinity ? 1 / infinite : 0 }
        } else if m == -.infinity {
            // Nothing usable (the generation loops report this as an error first); still a distribution.
            p = [Float](repeating: 0, count: n)
            p[0] = 1
            return p
        } else {
            // Finite maximum: the usual softmax (exp of -infinity is 0 for the NaN entries).
            p.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, n) }
        }
        let keep = candidates(p)
        if keep.count < n {
            var q = [Float](repeating: 0, count: n)
            var s: Float = 0
            for i in keep { q[i] = p[i]; s += p[i] }
            // keep starts with the most likely token, whose probability is at least 1/n > 0.
            for i in keep { q[i] /= s }
            return q
        }
        return p
    }

    /// Indices kept by top-k and top-p, most likely first; all indices when both are off.
    private func candidates(_ probs: [Float]) -> [Int] {
        let n = probs.count
        let useK = parameters.topK > 0 && parameters.topK < n
        let useP = parameters.topP < 1
        guard useK || useP else { return Array(0..<n) }
        var idx: [Int]
        if useP && !useK {
            // llama2.c prunes tokens that cannot be in the nucleus before sorting.
            let cutoff = n > 1 ? (1 - parameters.topP) / Float(n - 1) : 0
            idx = (0..<n).filter { probs[$0] >= cutoff }
            // The most likely token always reaches the cutoff (its probability is at least 1/n),
            // but keep the list non-empty whatever rounding does.
            if idx.isEmpty { idx = Array(0..<n) }
        } else {
            idx = Array(0..<n)
        }
        idx.sort { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
        if useK { idx = Array(idx.prefix(parameters.topK)) }
        if useP && !idx.isEmpty {
            var cum: Float = 0
            var last = idx.count - 1
            for (j, i) in idx.enumerated() {
                cum += probs[i]
                if cum > parameters.topP { last = j; break }
            }
            idx = Array(idx[0...last])
        }
        return idx
    }

    /// Draws the next token.
    public mutating func sample(_ logits: [Float]) -> Int {
        if parameters.isGreedy {
            return logits.withUnsafeBufferPointer { Self.argmax($0) }
        }
        let p = distribution(logits)
        return draw(p)
    }

    /// Draws an index from a probability vector with this sampler's generator.
    public mutating func draw(_ p: [Float]) -> Int {
        let coin = rng.nextFloat()
        var cdf: Float = 0
        var last = 0
        for i in 0..<p.count where p[i] > 0 {
            cdf += p[i]
            last = i
            if coin < cdf { return i }
        }
        return last  // rounding left the total just under 1
    }

    /// A uniform draw from this sampler's generator (for acceptance tests).
    public mutating func uniform() -> Float { rng.nextFloat() }
}

/// Errors of generation requests.
public enum GenerationError: LocalizedError, Equatable {
    case invalidParameter(String)
    case promptTooLong(tokens: Int, context: Int)
    case badLogits(position: Int, String)

    public var errorDescription: String? {
        switch self {
        case let .invalidParameter(why): return "invalid generation setting: \(why)"
        case let .promptTooLong(tokens, context):
            return "the prompt has \(tokens) tokens but the model's context holds \(context); shorten the prompt"
        case let .badLogits(position, why):
            return "cannot sample at position \(position): \(why); the model file may be damaged (compare it with a fresh download)"
        }
    }
}
