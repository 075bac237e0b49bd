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
                            RotaryEmbedding.rotate(row + h * headDim, half: half, style: style, cos: cr, sin: sr, sign: sign)
                        }
                    }
                }
            }
        }
    }
}
