import BalconyCore
import Foundation

func randomMatrix(_ rows: Int, _ cols: Int, _ seed: inout UInt64) -> WeightMatrix {
    var v = [Float](repeating: 0, count: rows * cols)
    for i in 0..<v.count { seed = seed &* 6364136223846793005 &+ 1442695040888963407; v[i] = (Float(seed >> 40) / Float(1 << 24) - 0.5) * 0.04 }
    return WeightMatrix.owned(rows: rows, cols: cols, values: v)
}
let c = LlamaConfig(dim: 768, hiddenDim: 2048, layerCount: 12, headCount: 12, vocabSize: 32000, contextLength: 1024, tiedEmbeddings: true)
var seed: UInt64 = 1
let emb = randomMatrix(c.vocabSize, c.dim, &seed)
let layers = (0..<c.layerCount).map { _ in LayerWeights(attentionNorm: .init(repeating: 1, count: c.dim), wq: randomMatrix(c.qDim, c.dim, &seed), wk: randomMatrix(c.kvDim, c.dim, &seed), wv: randomMatrix(c.kvDim, c.dim, &seed), wo: randomMatrix(c.dim, c.qDim, &seed), ffnNorm: .init(repeating: 1, count: c.dim), gate: randomMatrix(c.hiddenDim, c.dim, &seed), up: randomMatrix(c.hiddenDim, c.dim, &seed), down: randomMatrix(c.dim, c.hiddenDim, &seed)) }
let w = ModelWeights(config: c, tokenEmbedding: emb, layers: layers, finalNorm: .init(repeating: 1, count: c.dim), output: emb)
let m = try LlamaModel(weights: w, threads: 2)
let prompt = (0..<512).map { ($0 * 7) % 32000 }
for _ in 0..<3 {
    let cache = m.makeCache()
    var t = Date()
    var logits = try m.forward(prompt, cache: cache)
    let pre = Date().timeIntervalSince(t)
    t = Date()
    for _ in 0..<64 { let n = logits.withUnsafeBufferPointer { Sampler.argmax($0) }; logits = try m.forward([n], cache: cache) }
    let dec = Date().timeIntervalSince(t)
    print(String(format: "prefill %.1f tok/s  decode %.1f tok/s  (bytes/token %.1f MB)", 512 / pre, 64 / dec, Double(w.bytesPerToken) / 1e6))
}
let bw = MachineCeilings.readBandwidth()
print(String(format: "bandwidth %.1f GB/s -> bound %.1f tok/s", bw / 1e9, bw / Double(w.bytesPerToken)))
