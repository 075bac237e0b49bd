import Foundation

/// Cosines and sines of the rotary embedding for positions `0 ..< positions`, computed once per
/// batch shape (every training sequence starts at position 0). Angles use the same Float
/// arithmetic as `RotaryEmbedding.apply`, so training and inference rotate identically.
struct RopeTable {
    let style: RopeStyle
    let headDim: Int
    let positions: Int
    private let cos: [Float]   // [positions, headDim / 2]
    private let sin: [Float]   // [positions, headDim / 2]

    init(rope: RotaryEmbedding, positions: Int) {
        let half = rope.headDim / 2
        var c = [Float](repeating: 0, count: positions * half), s = c
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * rope.inverseFrequencies[i]
                c[p * half + i] = cosf(angle)
                s[p * half + i] = sinf(angle)
            }
        }
        style = rope.style
        headDim = rope.headDim
        self.positions = positions
        cos = c
        sin = s
    }

    /// Rotates every head of `x[sequences * positions, heads * headDim]` in place; row `r` is at
    /// position `r % positions`. `inverse` rotates by the negative angle: the rotation is
    /// orthogonal, so that is its transpose, i.e. the backward pass.
    func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, inverse: Bool) {
        let half = headDim / 2, stride = heads * headDim
        let sign: Float = inverse ? -1 : 1
        let style = style, positions = positions
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                let cosp = cb.baseAddress!, sinp = sb.baseAddress!
                parallelChunks(rows, minimumPerThread: 128) { range in
                    for r in range {
                        let cr = cosp + (r % positions) * half, sr = sinp + (r % positions) * half
                        let row = x + r * stride
                        for h in 0..<heads {
                            let v = row + h * headDim
                            switch style {
                            case .interleaved:
                                for i in 0..<half {
                                    let a = v[2 * i], b = v[2 * i + 1], c = cr[i], s = sign * sr[i]
                                    v[2 * i] = a * c - b * s
                                    v[2 * i + 1] = a * s + b * c
                                }
                            case .halfSplit:
                                for i in 0..<half {
                                    let a = v[i], b = v[i + half], c = cr[i], s = sign * sr[i]
                                    v[i] = a * c - b * s
                                    v[i + half] = b * c + a * s
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
