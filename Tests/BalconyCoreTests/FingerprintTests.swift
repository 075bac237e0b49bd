import Foundation
import Testing
@testable import BalconyCore

/// Shared helpers for the balcony-file and fingerprint tests.
enum BalconyTestSupport {
    static let stories = ModelFixtures.shared.appendingPathComponent("models/stories260K/stories260K.bin")
    static let storiesTokenizer = ModelFixtures.shared.appendingPathComponent("models/stories260K/tok512.bin")
    static let fixtures = ModelFixtures.root.appendingPathComponent("balcony")

    /// Writes `weights` as a Hugging Face folder (config.json + F32 model.safetensors), q/k rows in
    /// Hugging Face order whatever the weights' own order — the way transformers' converters do.
    static func writeHuggingFaceFolder(_ weights: ModelWeights, to directory: URL) throws {
        let c = weights.config
        func hf(_ m: WeightMatrix, heads: Int) -> [Float] {
            (c.ropeStyle == .interleaved ? TinyModels.toHalfSplitRows(m, heads: heads) : m).toFloats()
        }
        var values: [String: [Float]] = [
            "model.embed_tokens.weight": weights.tokenEmbedding.toFloats(),
            "model.norm.weight": weights.finalNorm,
        ]
        if !c.tiedEmbeddings { values["lm_head.weight"] = weights.output.toFloats() }
        for (i, l) in weights.layers.enumerated() {
            let p = "model.layers.\(i)."
            values[p + "input_layernorm.weight"] = l.attentionNorm
            values[p + "self_attn.q_proj.weight"] = hf(l.wq, heads: c.headCount)
            values[p + "self_attn.k_proj.weight"] = hf(l.wk, heads: c.kvHeadCount)
            values[p + "self_attn.v_proj.weight"] = l.wv.toFloats()
            values[p + "self_attn.o_proj.weight"] = l.wo.toFloats()
            values[p + "post_attention_layernorm.weight"] = l.ffnNorm
            values[p + "mlp.gate_proj.weight"] = l.gate.toFloats()
            values[p + "mlp.up_proj.weight"] = l.up.toFloats()
            values[p + "mlp.down_proj.weight"] = l.down.toFloats()
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tensors = RandomModel.tensors(config: c, dtype: .f32)
        try SafetensorsWriter.write(to: directory.appendingPathComponent("model.safetensors"), tensors: tensors,
                                    metadata: ["format": "pt"]) { values[$0.name] ?? [] }
        try HuggingFaceConfig(c, dtype: .f32).jsonData().write(to: directory.appendingPathComponent("config.json"))
    }

    /// A copy of `weights` with one matrix replaced by owned values changed by `change`.
    static func modified(_ weights: ModelWeights, _ change: (inout ModelWeights) -> Void) -> ModelWeights {
        var w = weights
        change(&w)
        return w
    }
}

@Suite struct FingerprintTests {
    @Test func storiesBinAndHuggingFaceFolderAgree() throws {
        let bin = try ModelLoader.load(path: BalconyTestSupport.stories.path)
        #expect(bin.weights.config.ropeStyle == .interleaved)
        let temp = try TemporaryDirectory()
        let folder = temp.file("stories260K-hf")
        try BalconyTestSupport.writeHuggingFaceFolder(bin.weights, to: folder)
        let hf = try ModelLoader.load(path: folder.path)
        #expect(hf.format == "huggingface")
        #expect(hf.weights.config.ropeStyle == .halfSplit)
        // The q rows really are in another order, so equality is not an accident of identical bytes.
        #expect(hf.weights.layers[0].wq.toFloats() != bin.weights.layers[0].wq.toFloats())

        let a = ModelFingerprint.compute(bin.weights), b = ModelFingerprint.compute(hf.weights)
        #expect(a.count == 64 && a.allSatisfy { $0.isHexDigit })
        #expect(a == b)
        #expect(ModelFingerprint.compute(bin.weights) == a, "not stable across calls")
    }

    @Test func modifiedCopiesDiffer() throws {
        let base = try ModelLoader.load(path: BalconyTestSupport.stories.path).weights
        let original = ModelFingerprint.compute(base)
        let c = base.config
        let variants: [(String, ModelWeights)] = [
            ("final norm", BalconyTestSupport.modified(base) { $0.finalNorm[3] += 0.25 }),
            ("embedding (first sampled value)", BalconyTestSupport.modified(base) { w in
                var e = w.tokenEmbedding.toFloats()
                e[0] += 1e-3
                w.tokenEmbedding = .owned(rows: c.vocabSize, cols: c.dim, values: e)
                if c.tiedEmbeddings { w.output = w.tokenEmbedding }
            }),
            ("last layer down_proj", BalconyTestSupport.modified(base) { w in
                var d = w.layers[c.layerCount - 1].down.toFloats()
                d[d.count - 1] *= 2
                w.layers[c.layerCount - 1].down = .owned(rows: c.dim, cols: c.hiddenDim, values: d)
            }),
            ("one value of v_proj", BalconyTestSupport.modified(base) { w in
                var v = w.layers[2].wv.toFloats()
                v[5] = -v[5]
                w.layers[2].wv = .owned(rows: c.kvDim, cols: c.dim, values: v)
            }),
        ]
        for (what, weights) in variants {
            #expect(ModelFingerprint.compute(weights) != original, "changing the \(what) kept the fingerprint")
        }
    }

    @Test func rowOrderOfQAndKDoesNotMatter() throws {
        let c = TinyModels.config(style: .interleaved)
        let w = TinyModels.weights(c)
        var hf = w
        hf.config.ropeStyle = .halfSplit
        for i in hf.layers.indices {
            hf.layers[i].wq = TinyModels.toHalfSplitRows(w.layers[i].wq, heads: c.headCount)
            hf.layers[i].wk = TinyModels.toHalfSplitRows(w.layers[i].wk, heads: c.kvHeadCount)
        }
        #expect(ModelFingerprint.compute(w) == ModelFingerprint.compute(hf))
        // Other shapes give other fingerprints even before any value is compared.
        var wider = TinyModels.config(style: .interleaved)
        wider.hiddenDim = 96
        #expect(ModelFingerprint.compute(TinyModels.weights(wider)) != ModelFingerprint.compute(w))
    }

    @Test func largeTensorsAreSampledInEvenRuns() {
        #expect(ModelFingerprint.sampleRuns(count: 2048).map(\.length) == [2048])
        let runs = ModelFingerprint.sampleRuns(count: 1_000_000)
        #expect(runs.count == 32)
        #expect(runs.first?.start == 0)
        #expect(runs.last.map { $0.start + $0.length } == 1_000_000)
        #expect(zip(runs, runs.dropFirst()).allSatisfy { $0.start + $0.length <= $1.start })
    }

    @Test func q8WeightsAreReadAsTheirDequantizedValues() {
        let c = TinyModels.config()
        let w = TinyModels.weights(c)
        var q = w
        // gate is [hidden, dim] with dim = 32: one Q8_0 block per row.
        q.layers[0].gate = TinyModels.quantize(w.layers[0].gate)
        var dequantized = w
        dequantized.layers[0].gate = .owned(rows: c.hiddenDim, cols: c.dim, values: q.layers[0].gate.toFloats())
        #expect(ModelFingerprint.compute(q) == ModelFingerprint.compute(dequantized))
        #expect(ModelFingerprint.compute(q) != ModelFingerprint.compute(w))
    }
}
