import Foundation
@testable import BalconyCore

/// Small random models built in memory for tests: shapes like real ones (GQA, biases, untied
/// heads), values from a fixed-seed generator.
enum TinyModels {
    struct LCG {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 11) / Double(1 << 53)) * 2 - 1
        }
        mutating func values(_ n: Int, scale: Float) -> [Float] { (0..<n).map { _ in next() * scale } }
    }

    static func config(bias: Bool = false, tied: Bool = false, style: RopeStyle = .halfSplit, kvHeads: Int = 2, layers: Int = 2) -> LlamaConfig {
        LlamaConfig(architecture: bias ? "qwen2" : "llama", dim: 32, hiddenDim: 64, layerCount: layers, headCount: 4, kvHeadCount: kvHeads,
                    vocabSize: 64, contextLength: 64, normEps: 1e-5, ropeTheta: 10000, ropeStyle: style,
                    tiedEmbeddings: tied, attentionBias: bias)
    }

    static func weights(_ c: LlamaConfig, seed: UInt64 = 7) -> ModelWeights {
        var g = LCG(state: seed)
        func m(_ r: Int, _ k: Int) -> WeightMatrix { .owned(rows: r, cols: k, values: g.values(r * k, scale: 0.3)) }
        func norm(_ n: Int) -> [Float] { g.values(n, scale: 0.2).map { 1 + $0 } }
        let emb = m(c.vocabSize, c.dim)
        let layers = (0..<c.layerCount).map { _ in
            LayerWeights(attentionNorm: norm(c.dim), wq: m(c.qDim, c.dim), wk: m(c.kvDim, c.dim), wv: m(c.kvDim, c.dim),
                         wo: m(c.dim, c.qDim),
                         bq: c.attentionBias ? g.values(c.qDim, scale: 0.1) : nil,
                         bk: c.attentionBias ? g.values(c.kvDim, scale: 0.1) : nil,
                         bv: c.attentionBias ? g.values(c.kvDim, scale: 0.1) : nil,
                         ffnNorm: norm(c.dim), gate: m(c.hiddenDim, c.dim), up: m(c.hiddenDim, c.dim), down: m(c.dim, c.hiddenDim))
        }
        return ModelWeights(config: c, tokenEmbedding: emb, layers: layers, finalNorm: norm(c.dim), output: c.tiedEmbeddings ? emb : m(c.vocabSize, c.dim))
    }

    /// Quantizes an F32 matrix to GGML Q8_0 blocks (the reference rule: scale = max|x| / 127).
    static func quantize(_ w: WeightMatrix) -> WeightMatrix {
        precondition(w.cols % 32 == 0, "Q8_0 rows are whole blocks of 32")
        let v = w.toFloats()
        let blocks = v.count / 32
        let p = UnsafeMutableRawPointer.allocate(byteCount: blocks * 34, alignment: 64)
        for b in 0..<blocks {
            let xs = v[(b * 32)..<(b * 32 + 32)]
            let amax = xs.map { abs($0) }.max()!
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            p.storeBytes(of: HalfPrecision.f32ToF16(d), toByteOffset: b * 34, as: UInt16.self)
            for (j, x) in xs.enumerated() { p.storeBytes(of: Int8((x * id).rounded()), toByteOffset: b * 34 + 2 + j, as: Int8.self) }
        }
        return WeightMatrix(rows: w.rows, cols: w.cols, type: .q8_0, fileType: .q8_0, data: p, storage: WeightStorage(owning: p))
    }

    /// Every layer matrix and the output head as Q8_0 (embeddings stay F32).
    static func quantizeAll(_ w: ModelWeights) -> ModelWeights {
        var q = w
        q.layers = w.layers.map { l in
            var l = l
            for kp in [\LayerWeights.wq, \.wk, \.wv, \.wo, \.gate, \.up, \.down] { l[keyPath: kp] = quantize(l[keyPath: kp]) }
            return l
        }
        q.output = quantize(w.output)
        return q
    }

    /// Interleaved-pair rows -> half-split rows, per head (transformers' permute).
    static func toHalfSplitRows(_ w: WeightMatrix, heads: Int) -> WeightMatrix {
        let v = w.toFloats(), d = w.rows / heads, cols = w.cols
        var out = [Float](repeating: 0, count: v.count)
        for h in 0..<heads {
            for j in 0..<(d / 2) {
                for c in 0..<cols {
                    out[(h * d + j) * cols + c] = v[(h * d + 2 * j) * cols + c]
                    out[(h * d + d / 2 + j) * cols + c] = v[(h * d + 2 * j + 1) * cols + c]
                }
            }
        }
        return .owned(rows: w.rows, cols: cols, values: out)
    }
}
