import Foundation

/// Rotary position embedding for one head size, in either pairing (see docs/rope.md).
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    public let style: RopeStyle
    /// `headDim / 2` inverse frequencies, LLaMA-3 scaling already applied.
    public let inverseFrequencies: [Float]

    public init(config: LlamaConfig) {
        headDim = config.headDim
        style = config.ropeStyle
        inverseFrequencies = config.ropeInverseFrequencies()
    }

    /// Rotates `heads` heads of each of `tokens` rows of `x` (row stride `heads * headDim`);
    /// row t is at position `start + t`. Angles are computed in Float as transformers and
    /// llama2.c do, so results match them bit-for-bit in the common case.
    public func apply(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, start: Int) {
        let half = headDim / 2
        let stride = heads * headDim
        var cosv = [Float](repeating: 0, count: half)
        var sinv = [Float](repeating: 0, count: half)
        for t in 0..<tokens {
            let pos = Float(start + t)
            for i in 0..<half {
                let angle = pos * inverseFrequencies[i]
                cosv[i] = cosf(angle)
                sinv[i] = sinf(angle)
            }
            let row = x + t * stride
            for h in 0..<heads {
                Self.rotate(row + h * headDim, half: half, style: style, cos: cosv, sin: sinv, sign: 1)
            }
        }
    }

    /// Rotates the pairs of one head by the angles whose cosines and sines are given (`half` each);
    /// `sign = -1` rotates backwards (the transpose, used by the training backward pass).
    @inline(__always)
    static func rotate(_ v: UnsafeMutablePointer<Float>, half: Int, style: RopeStyle,
                       cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, sign: Float) {
        switch style {
        case .interleaved:
            for i in 0..<half {
                let a = v[2 * i], b = v[2 * i + 1], c = cos[i], s = sign * sin[i]
                v[2 * i] = a * c - b * s
                v[2 * i + 1] = a * s + b * c
            }
        case .halfSplit:
            for i in 0..<half {
                let a = v[i], b = v[i + half], c = cos[i], s = sign * sin[i]
                v[i] = a * c - b * s
                v[i + half] = b * c + a * s
            }
        }
    }
}
