import Foundation
import Testing
@testable import BalconyCore

/// Random Hugging Face folders. That transformers reads them is shown by comparing what we write
/// with what transformers' `save_pretrained` wrote for the fixtures of the same shapes: the
/// safetensors header byte for byte, and config.json key by key. (By hand, `python3
/// scripts/make_model_fixtures.py --check-folder DIR` loads such a folder with transformers.)
@Suite struct RandomModelTests {
    /// The shapes of the llama-gqa fixture (transformers-written).
    static let llamaGQA = LlamaConfig(architecture: "llama", dim: 64, hiddenDim: 96, layerCount: 2, headCount: 4, kvHeadCount: 2,
                                      vocabSize: 128, contextLength: 64, normEps: 1e-5, ropeTheta: 10000)
    /// The shapes of the qwen2-tied fixture.
    static let qwen2Tied = LlamaConfig(architecture: "qwen2", dim: 64, hiddenDim: 96, layerCount: 2, headCount: 4, kvHeadCount: 2,
                                       vocabSize: 128, contextLength: 128, normEps: 1e-6, ropeTheta: 1_000_000,
                                       tiedEmbeddings: true, attentionBias: true)
    /// The shapes of the llama3-rope fixture.
    static let llama3 = LlamaConfig(architecture: "llama", dim: 64, hiddenDim: 96, layerCount: 2, headCount: 4, kvHeadCount: 4,
                                    vocabSize: 128, contextLength: 256, normEps: 1e-5, ropeTheta: 500_000,
                                    ropeScaling: RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64))

    /// Equality of parsed JSON values; numbers compare by value (10000 == 10000.0, as in Python).
    private func jsonEqual(_ a: Any, _ b: Any) -> Bool {
        switch (a, b) {
        case let (x as String, y as String): return x == y
        case let (x as [Any], y as [Any]): return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
        case let (x as [String: Any], y as [String: Any]):
            return Set(x.keys) == Set(y.keys) && x.allSatisfy { k, v in y[k].map { jsonEqual(v, $0) } ?? false }
        case (is NSNull, is NSNull): return true
        case let (x as NSNumber, y as NSNumber): return x == y
        default: return false
        }
    }

    /// The JSON header of a safetensors file, with its length prefix.
    private func header(_ url: URL) throws -> Data {
        let file = try SafetensorsFile(url: url)
        return Data(file.file.bytes[0..<file.dataStart])
    }

    @Test(arguments: [("llama-gqa", llamaGQA), ("qwen2-tied", qwen2Tied), ("llama3-rope", llama3)])
    func safetensorsHeaderIsTransformersOwn(_ fixture: String, _ config: LlamaConfig) throws {
        let temp = try TemporaryDirectory()
        try RandomModel.write(config: config, dtype: .f32, seed: 1, to: temp.url)
        let ours = try header(temp.file("model.safetensors"))
        let theirs = try header(ModelFixtures.model(fixture).appendingPathComponent("hf-f32/model.safetensors"))
        #expect(ours == theirs, "\(String(decoding: ours, as: UTF8.self))")
    }

    @Test(arguments: [("llama-gqa", llamaGQA), ("qwen2-tied", qwen2Tied), ("llama3-rope", llama3)])
    func configJSONAgreesWithTransformers(_ fixture: String, _ config: LlamaConfig) throws {
        let temp = try TemporaryDirectory()
        try RandomModel.write(config: config, dtype: .f32, seed: 1, to: temp.url)
        func object(_ url: URL) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        }
        let ours = try object(temp.file("config.json"))
        let theirs = try object(ModelFixtures.model(fixture).appendingPathComponent("hf-f32/config.json"))
        // transformers 4.x spellings we add for older readers; transformers 5 accepts them too.
        let legacy: Set<String> = ["rope_theta", "rope_scaling"]
        // Keys transformers writes with values equal to its defaults, which we leave out.
        let defaulted: Set<String> = ["attention_dropout", "bos_token_id", "eos_token_id", "initializer_range", "pad_token_id",
                                      "pretraining_tp", "transformers_version", "use_cache", "layer_types", "max_window_layers",
                                      "attention_bias", "mlp_bias"]
        for key in ours.keys where !legacy.contains(key) {
            let mine = try #require(ours[key])
            let reference = try #require(theirs[key], "transformers does not write '\(key)'")
            #expect(jsonEqual(mine, reference), "\(key): ours \(mine), transformers \(reference)")
        }
        for key in theirs.keys where ours[key] == nil {
            #expect(defaulted.contains(key), "we do not write '\(key)'")
        }
        // The legacy keys say the same as rope_parameters.
        let parameters = try #require(ours["rope_parameters"] as? [String: Any])
        #expect(jsonEqual(ours["rope_theta"] as Any, parameters["rope_theta"] as Any))
        if let scaling = ours["rope_scaling"] as? [String: Any] {
            for (k, v) in scaling { #expect(jsonEqual(v, parameters[k] as Any), "rope_scaling.\(k)") }
        }
        // And reading it back gives the configuration we wrote (in Hugging Face row order).
        var expected = config
        expected.ropeStyle = .halfSplit
        #expect(try HuggingFaceConfig.load(url: temp.file("config.json")).llamaConfig(source: "c") == expected)
    }

    @Test func writeThenLoad() throws {
        let temp = try TemporaryDirectory()
        var config = Self.llamaGQA
        config.ropeStyle = .interleaved  // ignored: the folder is Hugging Face order by definition
        try RandomModel.write(config: config, dtype: .f32, seed: 42, to: temp.url)
        let w = try HuggingFaceModelLoader.load(directory: temp.url)
        #expect(w.config.ropeStyle == .halfSplit)
        #expect(w.config.dim == 64 && w.config.kvHeadCount == 2 && !w.config.tiedEmbeddings)
        #expect(w.finalNorm.allSatisfy { $0 == 1 })
        #expect(w.layers.allSatisfy { $0.attentionNorm.allSatisfy { $0 == 1 } && $0.ffnNorm.allSatisfy { $0 == 1 } })
        // N(0, 0.02): with n values the sample mean has standard error 0.02/sqrt(n) and the sample
        // standard deviation a relative error of about 1/sqrt(2n); the bounds are 5 of those.
        for m in [w.tokenEmbedding, w.output, w.layers[0].wq, w.layers[1].down] {
            let v = m.toFloats().map(Double.init)
            let n = Double(v.count)
            let mean = v.reduce(0, +) / n
            let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n).squareRoot()
            #expect(abs(mean) < 5 * 0.02 / n.squareRoot(), "mean \(mean)")
            #expect(abs(std / 0.02 - 1) < 5 / (2 * n).squareRoot(), "std \(std)")
        }
        // Every tensor has its own stream.
        #expect(w.layers[0].wq.toFloats() != w.layers[1].wq.toFloats())
        #expect(w.tokenEmbedding.toFloats() != w.output.toFloats())
        // It runs.
        let lp = try LlamaModel(weights: w, threads: 1).tokenLogProbabilities(tokens: [1, 5, 9, 127])
        #expect(lp.count == 3 && lp.allSatisfy { $0.isFinite && $0 < 0 })
    }

    @Test func qwen2HasBiasesAndNoHead() throws {
        let temp = try TemporaryDirectory()
        try RandomModel.write(config: Self.qwen2Tied, dtype: .bf16, seed: 3, to: temp.url)
        let file = try SafetensorsFile(url: temp.file("model.safetensors"))
        #expect(file["lm_head.weight"] == nil)
        #expect(file.tensors.allSatisfy { $0.dtype == .bf16 })
        let w = try HuggingFaceModelLoader.load(directory: temp.url)
        #expect(w.config.tiedEmbeddings && w.config.attentionBias)
        let bias = try #require(w.layers[0].bq)
        #expect(bias.count == 64 && bias.contains { $0 != 0 })
    }

    @Test func seedDecidesTheBytes() throws {
        let temp = try TemporaryDirectory()
        for (name, seed) in [("a", UInt64(5)), ("b", 5), ("c", 6)] {
            try RandomModel.write(config: Self.llamaGQA, dtype: .f16, seed: seed, to: temp.file(name))
        }
        let a = try Data(contentsOf: temp.file("a/model.safetensors"))
        #expect(a == (try Data(contentsOf: temp.file("b/model.safetensors"))))
        #expect(a != (try Data(contentsOf: temp.file("c/model.safetensors"))))
        #expect(try Data(contentsOf: temp.file("a/config.json")) == (try Data(contentsOf: temp.file("c/config.json"))))
    }

    @Test func halfPrecisionFilesHoldTheRoundedF32Values() throws {
        let temp = try TemporaryDirectory()
        try RandomModel.write(config: Self.llamaGQA, dtype: .f32, seed: 9, to: temp.file("f32"))
        try RandomModel.write(config: Self.llamaGQA, dtype: .bf16, seed: 9, to: temp.file("bf16"))
        let f32 = try HuggingFaceModelLoader.load(directory: temp.file("f32")).layers[0].wv.toFloats()
        let bf16m = try HuggingFaceModelLoader.load(directory: temp.file("bf16")).layers[0].wv
        #expect(bf16m.fileType == .bf16)
        // BF16 keeps 8 significant bits: round-to-nearest is within half an ulp, 2^-8 relative.
        for (a, b) in zip(f32, bf16m.toFloats()) { #expect(abs(a - b) <= abs(a) * 0x1p-8) }
    }

    @Test func refusesWhatItCannotWrite() throws {
        let temp = try TemporaryDirectory()
        expectModelFileError(["Q8_0"]) { if case .writeFailed = $0 { return true }; return false } _: {
            try RandomModel.write(config: Self.llamaGQA, dtype: .q8_0, seed: 1, to: temp.url)
        }
        var bad = Self.llamaGQA
        bad.kvHeadCount = 3
        expectModelFileError(["not a multiple of 3"]) { if case .corrupt = $0 { return true }; return false } _: {
            try RandomModel.write(config: bad, dtype: .f32, seed: 1, to: temp.url)
        }
        var unknown = Self.llamaGQA
        unknown.architecture = "gemma"
        expectModelFileError(["gemma", "llama, mistral, qwen2"]) { if case .unsupportedArchitecture = $0 { return true }; return false } _: {
            try RandomModel.write(config: unknown, dtype: .f32, seed: 1, to: temp.url)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.url.path).isEmpty)
    }
}

/// The seeded generators behind random models.
@Suite struct RandomTests {
    @Test func splitMix64MatchesItsReferenceSequence() {
        // First outputs of Vigna's splitmix64.c seeded with 1234567.
        var g = SplitMix64(seed: 1_234_567)
        #expect([g.next(), g.next(), g.next()] == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    @Test func normalsHaveTheRightMoments() {
        var g = NormalGenerator(seed: 11)
        let n = 200_000
        var sum = 0.0, squares = 0.0, fourth = 0.0
        for _ in 0..<n {
            let x = g.next()
            sum += x; squares += x * x; fourth += x * x * x * x
        }
        #expect(abs(sum / Double(n)) < 0.012)            // 5 standard errors of the mean
        #expect(abs(squares / Double(n) - 1) < 0.016)     // 5 standard errors (sqrt(2/n))
        #expect(abs(fourth / Double(n) - 3) < 0.2)        // a normal's kurtosis is 3
    }

    @Test func streamSeedsDependOnNameAndSeed() {
        #expect(NormalGenerator.seed(1, name: "a") == NormalGenerator.seed(1, name: "a"))
        #expect(NormalGenerator.seed(1, name: "a") != NormalGenerator.seed(1, name: "b"))
        #expect(NormalGenerator.seed(1, name: "a") != NormalGenerator.seed(2, name: "a"))
    }
}
