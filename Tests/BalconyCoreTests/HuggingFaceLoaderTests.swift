import Foundation
import Testing
@testable import BalconyCore

/// Hugging Face folders written by transformers' `save_pretrained` (scripts/make_model_fixtures.py).
@Suite struct HuggingFaceLoaderTests {
    /// Tolerance on per-token log-probabilities. The expected values come from transformers in
    /// float32 on exactly the values the files hold (BF16 upcast included), so the only difference
    /// is float32 rounding in a different order of operations. The fixture script measures the
    /// float32 reference against float64 at under 1e-5 for these models; 1e-4 leaves a 10x margin
    /// and is still about 40000 times smaller than what a wrong RoPE pairing, missing rope scaling
    /// or missing biases change (the `sensitivity` entries, 4 to 5 nats).
    static let tolerance = 1e-4

    @Test(arguments: [("llama-gqa", "hf-f32"), ("llama-gqa", "hf-bf16"), ("llama3-rope", "hf-f32"), ("qwen2-tied", "hf-f32")])
    func logProbabilitiesMatchTransformers(_ model: String, _ variant: String) throws {
        let expected = try ModelFixtures.expected(model)
        let weights = try HuggingFaceModelLoader.load(directory: ModelFixtures.model(model).appendingPathComponent(variant))
        ModelFixtures.checkConfig(weights.config, expected.config)
        let reference = try #require(expected.logprobs[variant])
        let ours = try ModelFixtures.logProbabilities(weights, tokens: expected.tokens)
        #expect(ours.count == expected.tokens.count - 1)
        let diff = ModelFixtures.maxAbsDifference(ours, reference)
        #expect(diff < Self.tolerance, "\(model)/\(variant): max |Δ log p| = \(diff)")
        // The fixture itself must be able to catch the bugs it is meant for.
        for (what, change) in expected.sensitivity { #expect(change > 1000 * Self.tolerance, "\(what) only moves log p by \(change)") }
    }

    @Test func llamaConfigMapping() throws {
        let w = try HuggingFaceModelLoader.load(directory: ModelFixtures.model("llama-gqa").appendingPathComponent("hf-f32"))
        let c = w.config
        #expect(c.architecture == "llama")
        #expect(c.ropeStyle == .halfSplit)
        #expect(c.ropeScaling == nil)
        #expect(!c.attentionBias)
        #expect(w.layers[0].bq == nil)
        // F32 stays F32 (used in place); BF16 is widened but remembers its file type.
        #expect(w.layers[1].wq.type == .f32 && w.layers[1].wq.fileType == .f32)
        #expect(w.tokenEmbedding.rows == 128 && w.tokenEmbedding.cols == 64)
        #expect(w.layers[0].wk.rows == 32 && w.layers[0].wk.cols == 64)
        #expect(w.layers[0].down.rows == 64 && w.layers[0].down.cols == 96)
        let bf16 = try HuggingFaceModelLoader.load(directory: ModelFixtures.model("llama-gqa").appendingPathComponent("hf-bf16"))
        // BF16 stays 16-bit in memory: half the bytes per token, the same values once widened.
        #expect(bf16.layers[1].wq.type == .bf16 && bf16.layers[1].wq.fileType == .bf16)
        #expect(bf16.weightTypes == ["BF16"])
        #expect(bf16.bytesPerToken < w.bytesPerToken * 6 / 10)
        #expect(bf16.layers[1].wq.toFloats() == bf16.layers[1].wq.toFloats().map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) })
    }

    @Test func llama3RopeScalingMapsToTransformersFrequencies() throws {
        let expected = try ModelFixtures.expected("llama3-rope")
        let w = try HuggingFaceModelLoader.load(directory: ModelFixtures.model("llama3-rope").appendingPathComponent("hf-f32"))
        let scaling = try #require(w.config.ropeScaling)
        #expect(scaling == RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64))
        let ours = w.config.ropeInverseFrequencies()
        let theirs = try #require(expected.config.invFreq)
        #expect(ours.count == theirs.count)
        for (a, b) in zip(ours, theirs) { #expect(abs(Double(a) - b) <= 1e-6 * b, "\(a) vs transformers \(b)") }
    }

    @Test func qwen2BiasesAndTiedOutput() throws {
        let w = try HuggingFaceModelLoader.load(directory: ModelFixtures.model("qwen2-tied").appendingPathComponent("hf-f32"))
        #expect(w.config.architecture == "qwen2")
        #expect(w.config.attentionBias)
        #expect(w.config.tiedEmbeddings)
        #expect(w.layers[1].bq?.count == 64 && w.layers[1].bk?.count == 32 && w.layers[1].bv?.count == 32)
        #expect(w.output.data == w.tokenEmbedding.data)
    }

    // MARK: Strictness

    /// Copies the F32 llama fixture into a temporary folder, rewriting model.safetensors with
    /// `edit` applied to its tensor list.
    private func editedCopy(_ temp: TemporaryDirectory, edit: (inout [(SafetensorsWriter.Tensor, [Float])]) -> Void) throws -> URL {
        let source = ModelFixtures.model("llama-gqa").appendingPathComponent("hf-f32")
        let folder = temp.file("model")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"), to: folder.appendingPathComponent("config.json"))
        let file = try SafetensorsFile(url: source.appendingPathComponent("model.safetensors"))
        var tensors = try file.tensors.map { t in
            (SafetensorsWriter.Tensor(name: t.name, dtype: .f32, shape: t.shape), try file.floats(of: t))
        }
        edit(&tensors)
        try SafetensorsWriter.write(to: folder.appendingPathComponent("model.safetensors"), tensors: tensors, metadata: ["format": "pt"])
        return folder
    }

    @Test func namesEveryMissingUnexpectedAndMisshapedTensor() throws {
        let temp = try TemporaryDirectory()
        let folder = try editedCopy(temp) { tensors in
            tensors.removeAll { $0.0.name == "model.layers.1.mlp.up_proj.weight" || $0.0.name == "lm_head.weight" }
            tensors.append((SafetensorsWriter.Tensor(name: "model.layers.0.self_attn.o_proj.bias", dtype: .f32, shape: [64]), [Float](repeating: 0, count: 64)))
            if let i = tensors.firstIndex(where: { $0.0.name == "model.norm.weight" }) {
                tensors[i] = (SafetensorsWriter.Tensor(name: "model.norm.weight", dtype: .f32, shape: [63]), [Float](repeating: 1, count: 63))
            }
        }
        expectModelFileError(["model.layers.1.mlp.up_proj.weight", "lm_head.weight", "model.layers.0.self_attn.o_proj.bias",
                              "model.norm.weight: found [63], expected [64]"]) { error in
            guard case let .tensorSetMismatch(_, missing, unexpected, wrongShape) = error else { return false }
            return Set(missing) == ["model.layers.1.mlp.up_proj.weight", "lm_head.weight"]
                && unexpected == ["model.layers.0.self_attn.o_proj.bias"] && wrongShape.count == 1
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
    }

    @Test func configDisagreeingWithTensorsIsAShapeError() throws {
        let temp = try TemporaryDirectory()
        let folder = try temp.copy(ModelFixtures.model("llama-gqa").appendingPathComponent("hf-f32"), as: "model")
        let configURL = folder.appendingPathComponent("config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        json["intermediate_size"] = 128
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
        expectModelFileError(["model.layers.0.mlp.gate_proj.weight: found [96, 64], expected [128, 64]"]) { error in
            guard case let .tensorSetMismatch(_, missing, unexpected, wrongShape) = error else { return false }
            return missing.isEmpty && unexpected.isEmpty && wrongShape.count == 6  // gate, up, down in 2 layers
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
    }

    @Test func unsupportedElementTypeNamesTheTensor() throws {
        // An I32 tensor where a weight belongs: built by hand since the writer only writes floats.
        let temp = try TemporaryDirectory()
        let folder = try editedCopy(temp) { _ in }
        let file = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        var header = try #require(try JSONSerialization.jsonObject(with: Data(file.file.bytes[8..<file.dataStart])) as? [String: Any])
        var entry = try #require(header["model.layers.0.self_attn.v_proj.weight"] as? [String: Any])
        entry["dtype"] = "I32"
        header["model.layers.0.self_attn.v_proj.weight"] = entry
        var headerBytes = try JSONSerialization.data(withJSONObject: header)
        while (headerBytes.count % 8) != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(headerBytes)
        out.append(Data(file.file.bytes[file.dataStart...]))
        try out.write(to: folder.appendingPathComponent("model.safetensors"))
        expectModelFileError(["I32", "model.layers.0.self_attn.v_proj.weight"]) { error in
            if case .unknownTensorType = error { return true }
            return false
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
    }

    @Test func truncatedWeightsAreReportedNotCrashed() throws {
        let temp = try TemporaryDirectory()
        let folder = try temp.copy(ModelFixtures.model("llama-gqa").appendingPathComponent("hf-f32"), as: "model")
        let weights = folder.appendingPathComponent("model.safetensors")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: weights.path)[.size] as? Int)
        _ = try temp.truncatedCopy(of: weights, length: size - 1000, as: "cut.safetensors")
        try FileManager.default.removeItem(at: weights)
        try FileManager.default.moveItem(at: temp.file("cut.safetensors"), to: weights)
        expectModelFileError(["truncated", "has \(size - 1000)"]) { error in
            if case .truncated = error { return true }
            return false
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
    }

    @Test func shardIndexMustAgreeWithShards() throws {
        let temp = try TemporaryDirectory()
        let folder = try temp.copy(ModelFixtures.model("llama-gqa").appendingPathComponent("hf-bf16"), as: "model")
        let indexURL = folder.appendingPathComponent("model.safetensors.index.json")
        var index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as? [String: Any])
        var map = try #require(index["weight_map"] as? [String: String])
        let moved = "model.embed_tokens.weight"
        let shard = try #require(map[moved])
        map[moved] = shard.contains("00001") ? shard.replacingOccurrences(of: "00001-of", with: "00002-of") : shard.replacingOccurrences(of: "00002-of", with: "00001-of")
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: indexURL)
        expectModelFileError([moved]) { error in
            if case .corrupt = error { return true }
            return false
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
    }

    @Test func missingFilesAreNamed() throws {
        let temp = try TemporaryDirectory()
        let folder = try temp.copy(ModelFixtures.model("llama-gqa").appendingPathComponent("hf-f32"), as: "model")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("model.safetensors"))
        expectModelFileError(["model.safetensors"]) { error in
            if case .cannotOpen = error { return true }
            return false
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("config.json"))
        expectModelFileError(["config.json"]) { error in
            if case .cannotOpen = error { return true }
            return false
        } _: {
            _ = try HuggingFaceModelLoader.load(directory: folder)
        }
    }
}

/// config.json decoding and mapping, including spellings older transformers versions write.
@Suite struct HuggingFaceConfigTests {
    private func decode(_ json: String) throws -> HuggingFaceConfig {
        try JSONDecoder().decode(HuggingFaceConfig.self, from: Data(json.utf8))
    }

    private let base = """
        "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "vocab_size": 128
        """

    @Test func transformers4SpellingOfLlama3Scaling() throws {
        // As Meta's LLaMA-3.1 config.json states it.
        let c = try decode("""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", \(base), "num_key_value_heads": 2,
             "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "tie_word_embeddings": false, "torch_dtype": "bfloat16", "eos_token_id": [128001, 128008, 128009],
             "bos_token_id": 128000}
            """)
        #expect(c.dtype == "bfloat16")
        #expect(c.eosTokenIds == [128001, 128008, 128009])
        #expect(c.bosTokenId == 128000)
        let l = try c.llamaConfig(source: "config.json")
        #expect(l.ropeTheta == 500000)
        #expect(l.ropeScaling == RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        #expect(l.kvHeadCount == 2 && l.headDim == 16 && l.contextLength == 131072 && l.normEps == 1e-5)
        // Older files say "type" instead of "rope_type".
        let old = try decode("{\"model_type\": \"llama\", \(base), \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}")
        expectModelFileError(["linear", "llama3"]) { if case .unsupportedFeature = $0 { return true }; return false } _: {
            _ = try old.llamaConfig(source: "config.json")
        }
    }

    @Test(arguments: ["yarn", "dynamic", "longrope"])
    func unsupportedRopeScalingIsRefused(_ type: String) throws {
        let c = try decode("{\"model_type\": \"qwen2\", \(base), \"rope_scaling\": {\"rope_type\": \"\(type)\", \"factor\": 4.0}}")
        expectModelFileError(["'\(type)'", "supported: default, llama3"]) { if case .unsupportedFeature = $0 { return true }; return false } _: {
            _ = try c.llamaConfig(source: "config.json")
        }
    }

    @Test func unsupportedModelTypeListsTheSupportedOnes() throws {
        let c = try decode("{\"model_type\": \"gpt_neox\", \(base)}")
        expectModelFileError(["gpt_neox", "llama, mistral, qwen2"]) { error in
            if case let .unsupportedArchitecture(name, supported) = error { return name == "gpt_neox" && supported == ["llama", "mistral", "qwen2"] }
            return false
        } _: {
            _ = try c.llamaConfig(source: "config.json")
        }
        // Without model_type, the class name decides.
        let byClass = try decode("{\"architectures\": [\"MistralForCausalLM\"], \(base)}")
        #expect(try byClass.llamaConfig(source: "config.json").architecture == "mistral")
    }

    @Test func mistralSlidingWindowCapsTheContext() throws {
        // MistralConfig's default window (4096) applies when the key is absent; null means none.
        let absent = try decode("{\"model_type\": \"mistral\", \(base), \"max_position_embeddings\": 32768}")
        #expect(try absent.llamaConfig(source: "c").contextLength == 4096)
        let null = try decode("{\"model_type\": \"mistral\", \(base), \"max_position_embeddings\": 32768, \"sliding_window\": null}")
        #expect(try null.llamaConfig(source: "c").contextLength == 32768)
        let qwen = try decode("{\"model_type\": \"qwen2\", \(base), \"max_position_embeddings\": 32768, \"sliding_window\": 4096, \"use_sliding_window\": false}")
        #expect(try qwen.llamaConfig(source: "c").contextLength == 32768)
    }

    @Test func featuresWithoutAPlaceAreRefused() throws {
        let bias = try decode("{\"model_type\": \"llama\", \(base), \"attention_bias\": true}")
        expectModelFileError(["attention_bias"]) { if case .unsupportedFeature = $0 { return true }; return false } _: {
            _ = try bias.llamaConfig(source: "c")
        }
        let gelu = try decode("{\"model_type\": \"llama\", \(base), \"hidden_act\": \"gelu\"}")
        expectModelFileError(["gelu"]) { if case .unsupportedFeature = $0 { return true }; return false } _: {
            _ = try gelu.llamaConfig(source: "c")
        }
        let heads = try decode("{\"model_type\": \"llama\", \(base), \"num_key_value_heads\": 3}")
        expectModelFileError(["not a multiple of 3"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try heads.llamaConfig(source: "c")
        }
    }

    @Test func missingRequiredKeyIsNamed() throws {
        let temp = try TemporaryDirectory()
        let url = temp.file("config.json")
        try Data("{\"model_type\": \"llama\", \"hidden_size\": 64}".utf8).write(to: url)
        expectModelFileError(["intermediate_size"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try HuggingFaceConfig.load(url: url)
        }
    }
}
