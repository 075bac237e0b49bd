import Foundation

/// Sampling settings. `temperature == 0` is greedy (argmax).
public struct SamplingParameters: Sendable, Equatable {
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

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<logits.count where logits[i] > bestValue {
            bestValue = logits[i]
            best = i
        }
        return best
    }

    /// Probabilities the sampler draws from (after temperature, top-k and top-p), for speculative
    /// decoding's acceptance rule. Greedy gives a one-hot distribution.
    public func distribution(_ logits: [Float]) -> [Float] {
        let n = logits.count
        var p = [Float](repeating: 0, count: n)
        if parameters.temperature == 0 {
            p[logits.withUnsafeBufferPointer { Self.argmax($0) }] = 1
            return p
        }
        let inv = 1 / parameters.temperature
        for i in 0..<n { p[i] = logits[i] * inv }
        p.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, n) }
        let keep = candidates(p)
        if keep.count < n {
            var q = [Float](repeating: 0, count: n)
            var s: Float = 0
            for i in keep { q[i] = p[i]; s += p[i] }
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
            let cutoff = (1 - parameters.topP) / Float(n - 1)
            idx = (0..<n).filter { probs[$0] >= cutoff }
        } else {
            idx = Array(0..<n)
        }
        idx.sort { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
        if useK { idx = Array(idx.prefix(parameters.topK)) }
        if useP {
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
        if parameters.temperature == 0 {
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

    public var errorDescription: String? {
        switch self {
        case let .invalidParameter(why): return "invalid generation setting: \(why)"
        case let .promptTooLong(tokens, context):
            return "the prompt has \(tokens) tokens but the model's context holds \(context); shorten the prompt"
        }
    }
}
