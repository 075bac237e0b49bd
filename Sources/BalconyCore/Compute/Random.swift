#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny generator used to turn one 64-bit seed into
/// well-mixed state for `Xoshiro256StarStar`, as its authors recommend.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman and Vigna): fast, 256-bit state, and the same sequence on every
/// platform for a given seed — unlike `SystemRandomNumberGenerator`, which cannot be seeded.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var mix = SplitMix64(seed: seed)
        s = (mix.next(), mix.next(), mix.next(), mix.next())
    }

    /// Continues from a state saved with `stateWords` (training checkpoints resume the exact stream).
    /// Returns nil unless given four words that are not all zero (the one state xoshiro never leaves).
    public init?(stateWords w: [UInt64]) {
        guard w.count == 4, w.contains(where: { $0 != 0 }) else { return nil }
        s = (w[0], w[1], w[2], w[3])
    }

    /// The full generator state, four words, for saving and `init(stateWords:)`.
    public var stateWords: [UInt64] { [s.0, s.1, s.2, s.3] }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = Self.rotl(s.3, 45)
        return result
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    @inline(__always)
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}

/// Normally distributed values by the Box-Muller transform, two per pair of uniforms.
public struct NormalGenerator: Sendable {
    private var uniform: Xoshiro256StarStar
    private var spare: Double?

    public init(seed: UInt64) { uniform = Xoshiro256StarStar(seed: seed) }

    /// A stable 64-bit seed for a named stream (FNV-1a of the name mixed with `seed`). Swift's
    /// `Hasher` is randomized per process, so it cannot be used for reproducible streams.
    public static func seed(_ seed: UInt64, name: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        var mix = SplitMix64(seed: seed ^ h)
        return mix.next()
    }

    /// One sample of N(mean, std²).
    public mutating func next(mean: Double = 0, std: Double = 1) -> Double {
        if let z = spare {
            spare = nil
            return mean + std * z
        }
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1 - uniform.nextUnitDouble()
        let u2 = uniform.nextUnitDouble()
        let r = (-2 * log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spare = r * sin(theta)
        return mean + std * r * cos(theta)
    }

    /// Fills `out` with N(mean, std²) samples rounded to Float.
    public mutating func fill(_ out: UnsafeMutableBufferPointer<Float>, mean: Double = 0, std: Double = 1) {
        for i in out.indices { out[i] = Float(next(mean: mean, std: std)) }
    }
}
