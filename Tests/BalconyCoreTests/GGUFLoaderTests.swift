import Foundation
import Testing
@testable import BalconyCore

/// GGUF files written by llama.cpp's `gguf` package the way convert_hf_to_gguf.py writes them
/// (scripts/make_model_fixtures.py), plus hand-built malformed files.
@Suite struct GGUFLoaderTests {
    /// The expected values were computed by transformers on exactly the values each file holds
    /// (F16 upcast, Q8_0 blocks dequantized by gguf.quants), and Balcony's forward pass uses those
    /// same values (F16 widened exactly; Q8_0 products as scale x int8 in float32), so every type
    /// gets the float32 tolerance of the F32 files; see HuggingFaceLoaderTests.tolerance.
    static let tolerance = HuggingFaceLoaderTests.tolerance

    static let variants: [(String, String)] = [
        ("llama-gqa", "gguf-f32"), ("llama-gqa", "gguf-f16"), ("llama-gqa", "gguf-q8_0"),
        ("llama3-rope", "gguf-f32"),
        ("qwen2-tied", "gguf-f32"), ("qwen2-tied", "gguf-f16"), ("qwen2-tied", "gguf-q8_0"),
    ]

    @Test(arguments: variants)
    func logProbabilitiesMatchTransformers(_ model: String, _ variant: String) throws {
        let expected = try ModelFixtures.expected(model)
        let file = try GGUFFile(url: ModelFixtures.model(model).appendingPathComponent(variant + ".gguf"))
        let weights = try GGUFModelLoader.load(file: file)
        ModelFixtures.checkConfig(weights.config, expected.config)
        let reference = try #require(expected.logprobs[variant])
        let ours = try ModelFixtures.logProbabilities(weights, tokens: expected.tokens)
        let diff = ModelFixtures.maxAbsDifference(ours, reference)
        #expect(diff < Self.tolerance, "\(model)/\(variant): max |Δ log p| = \(diff)")
    }

    @Test func roundedVariantsNeedTheirOwnExpectations() throws {
        // Guards the fixture: if F16/Q8_0 files matched the F32 values within the tolerance, the
        // tests above could not tell a loader that ignored the stored rounding.
        let e = try ModelFixtures.expected("llama-gqa")
        let f32 = try #require(e.logprobs["gguf-f32"])
        for v in ["gguf-f16", "gguf-q8_0"] {
            #expect(ModelFixtures.maxAbsDifference(try #require(e.logprobs[v]), f32) > 10 * Self.tolerance)
        }
    }

    @Test func llamaConfigAndTypes() throws {
        let dir = ModelFixtures.model("llama-gqa")
        let f32 = try GGUFModelLoader.load(url: dir.appendingPathComponent("gguf-f32.gguf"))
        #expect(f32.config.architecture == "llama")
        #expect(f32.config.ropeStyle == .interleaved)
        #expect(!f32.config.attentionBias && !f32.config.tiedEmbeddings)
        #expect(f32.config.ropeFreqFactors == nil)
        #expect(f32.weightTypes == ["F32"])

        let f16 = try GGUFModelLoader.load(url: dir.appendingPathComponent("gguf-f16.gguf"))
        #expect(f16.layers[0].wq.type == .f16 && f16.layers[0].wq.fileType == .f16)
        #expect(f16.bytesPerToken < f32.bytesPerToken * 6 / 10)

        let q8 = try GGUFModelLoader.load(url: dir.appendingPathComponent("gguf-q8_0.gguf"))
        #expect(q8.weightTypes == ["Q8_0"])
        for m in [q8.tokenEmbedding, q8.output, q8.layers[1].wk, q8.layers[1].down] { #expect(m.type == .q8_0) }
        // Norms are F32 in the file and exact after loading.
        #expect(q8.layers[0].attentionNorm == f32.layers[0].attentionNorm)
    }

    /// The q/k rows of a llama GGUF are the Hugging Face rows permuted as docs/rope.md states
    /// (interleaved row h*d + 2j = HF row h*d + j, interleaved row h*d + 2j + 1 = HF row
    /// h*d + d/2 + j); v and everything else are unchanged.
    @Test func llamaQKRowsAreInterleavedCopiesOfHuggingFaceRows() throws {
        let dir = ModelFixtures.model("llama-gqa")
        let gguf = try GGUFModelLoader.load(url: dir.appendingPathComponent("gguf-f32.gguf"))
        let hf = try HuggingFaceModelLoader.load(directory: dir.appendingPathComponent("hf-f32"))
        let d = hf.config.headDim
        for l in 0..<hf.config.layerCount {
            for (g, h, heads) in [(gguf.layers[l].wq, hf.layers[l].wq, hf.config.headCount), (gguf.layers[l].wk, hf.layers[l].wk, hf.config.kvHeadCount)] {
                let gv = g.toFloats(), hv = h.toFloats(), cols = h.cols
                for head in 0..<heads {
                    for j in 0..<(d / 2) {
                        let i0 = head * d + 2 * j, i1 = i0 + 1
                        let h0 = head * d + j, h1 = head * d + d / 2 + j
                        #expect(Array(gv[(i0 * cols)..<((i0 + 1) * cols)]) == Array(hv[(h0 * cols)..<((h0 + 1) * cols)]))
                        #expect(Array(gv[(i1 * cols)..<((i1 + 1) * cols)]) == Array(hv[(h1 * cols)..<((h1 + 1) * cols)]))
                    }
                }
            }
            #expect(gguf.layers[l].wv.toFloats() == hf.layers[l].wv.toFloats())
            #expect(gguf.layers[l].down.toFloats() == hf.layers[l].down.toFloats())
        }
    }

    @Test func qwen2IsHalfSplitWithBiasesAndTiedOutput() throws {
        let dir = ModelFixtures.model("qwen2-tied")
        let gguf = try GGUFModelLoader.load(url: dir.appendingPathComponent("gguf-f32.gguf"))
        let hf = try HuggingFaceModelLoader.load(directory: dir.appendingPathComponent("hf-f32"))
        #expect(gguf.config.architecture == "qwen2")
        #expect(gguf.config.ropeStyle == .halfSplit)
        #expect(gguf.config.attentionBias && gguf.config.tiedEmbeddings)
        #expect(gguf.output.data == gguf.tokenEmbedding.data)
        // No permutation for qwen2: rows and biases are Hugging Face's.
        #expect(gguf.layers[0].wq.toFloats() == hf.layers[0].wq.toFloats())
        #expect(gguf.layers[0].bk == hf.layers[0].bk)
    }

    @Test func llama3RopeFreqsBecomeFrequencyFactors() throws {
        let expected = try ModelFixtures.expected("llama3-rope")
        let c = try GGUFModelLoader.load(url: ModelFixtures.model("llama3-rope").appendingPathComponent("gguf-f32.gguf")).config
        #expect(c.ropeScaling == nil)
        let factors = try #require(c.ropeFreqFactors)
        #expect(factors.map(Double.init) == expected.config.ropeFreqs)
        // Dividing the plain frequencies by the factors reproduces transformers' llama3 frequencies.
        let theirs = try #require(expected.config.invFreq)
        for (a, b) in zip(c.ropeInverseFrequencies(), theirs) { #expect(abs(Double(a) - b) <= 1e-6 * b, "\(a) vs \(b)") }
    }

    // MARK: Bad input

    @Test(arguments: [100, 2000, 40_000, 314_000])
    func truncatedFileIsReported(_ length: Int) throws {
        let temp = try TemporaryDirectory()
        let cut = try temp.truncatedCopy(of: ModelFixtures.model("llama-gqa").appendingPathComponent("gguf-f32.gguf"), length: length, as: "cut.gguf")
        expectModelFileError(["truncated", "has \(length)"]) { if case .truncated = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: cut)
        }
    }

    @Test func builderMakesALoadableModel() throws {
        // The hand-built files below differ from this one by one defect each.
        let temp = try TemporaryDirectory()
        try GGUFBuilder.llama().write(to: temp.file("ok.gguf"))
        let w = try GGUFModelLoader.load(url: temp.file("ok.gguf"))
        #expect(w.config.dim == 32 && w.config.vocabSize == 16 && w.config.kvHeadCount == 1)
    }

    @Test func unknownArchitectureListsSupportedOnes() throws {
        let temp = try TemporaryDirectory()
        try GGUFBuilder.llama(arch: "gpt2").write(to: temp.file("m.gguf"))
        expectModelFileError(["gpt2", "llama, mistral, qwen2"]) { if case .unsupportedArchitecture = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
    }

    @Test func mistralNamedFilesLoadAsLlama() throws {
        let temp = try TemporaryDirectory()
        try GGUFBuilder.llama(arch: "mistral").write(to: temp.file("m.gguf"))
        let c = try GGUFModelLoader.load(url: temp.file("m.gguf")).config
        #expect(c.architecture == "mistral" && c.ropeStyle == .interleaved)
    }

    @Test func unsupportedTensorTypeNamesTensorAndType() throws {
        let temp = try TemporaryDirectory()
        var b = GGUFBuilder.llama()
        // An IQ2_XXS (ggml type 16) ffn_up of the right shape; its bytes are never read.
        let i = try #require(b.tensors.firstIndex { $0.name == "blk.0.ffn_up.weight" })
        b.tensors[i] = .init(name: "blk.0.ffn_up.weight", shape: [64, 32], type: 16, data: [UInt8](repeating: 0, count: 1152))
        try b.write(to: temp.file("m.gguf"))
        expectModelFileError(["IQ2_XXS", "blk.0.ffn_up.weight"]) { if case .unknownTensorType = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
        // A type id ggml does not have at all.
        b.tensors[i] = .init(name: "blk.0.ffn_up.weight", shape: [64, 32], type: 99, data: [UInt8](repeating: 0, count: 1152))
        try b.write(to: temp.file("m.gguf"))
        expectModelFileError(["ggml type 99", "blk.0.ffn_up.weight"]) { if case .unknownTensorType = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
    }

    @Test func quantizedRowsThatAreNotWholeBlocksAreRefusedByName() throws {
        let temp = try TemporaryDirectory()
        var b = GGUFBuilder.llama()
        // Q4_K rows are whole 256-value super-blocks; this model's rows are 32 wide.
        let i = try #require(b.tensors.firstIndex { $0.name == "blk.0.ffn_up.weight" })
        b.tensors[i] = .init(name: "blk.0.ffn_up.weight", shape: [64, 32], type: 12, data: [UInt8](repeating: 0, count: 1152))
        try b.write(to: temp.file("m.gguf"))
        expectModelFileError(["Q4_K", "blk.0.ffn_up.weight", "256"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
    }

    @Test func missingAndMisshapedTensorsAreAllNamed() throws {
        let temp = try TemporaryDirectory()
        var b = GGUFBuilder.llama(layers: 2)
        b.tensors.removeAll { $0.name == "blk.1.attn_k.weight" || $0.name == "output_norm.weight" }
        let i = try #require(b.tensors.firstIndex { $0.name == "blk.0.ffn_down.weight" })
        b.tensors[i].shape = [64, 32]
        b.addF32("blk.0.attn_q.bias", [32])
        try b.write(to: temp.file("m.gguf"))
        expectModelFileError(["blk.1.attn_k.weight", "output_norm.weight", "blk.0.attn_q.bias",
                              "blk.0.ffn_down.weight: found [64, 32], expected [32, 64]"]) { error in
            guard case let .tensorSetMismatch(_, missing, unexpected, wrongShape) = error else { return false }
            return missing == ["blk.1.attn_k.weight", "output_norm.weight"] && unexpected == ["blk.0.attn_q.bias"] && wrongShape.count == 1
        } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
    }

    @Test func missingMetadataKeyIsNamed() throws {
        let temp = try TemporaryDirectory()
        var b = GGUFBuilder.llama()
        b.metadata.removeAll { $0.0 == "llama.feed_forward_length" }
        try b.write(to: temp.file("m.gguf"))
        expectModelFileError(["llama.feed_forward_length", "missing"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
    }

    @Test func unsupportedRopeScalingIsRefused() throws {
        let temp = try TemporaryDirectory()
        var b = GGUFBuilder.llama()
        b.set("llama.rope.scaling.type", .string("yarn"))
        b.set("llama.rope.scaling.factor", .f32(4))
        try b.write(to: temp.file("m.gguf"))
        expectModelFileError(["yarn"]) { if case .unsupportedFeature = $0 { return true }; return false } _: {
            _ = try GGUFModelLoader.load(url: temp.file("m.gguf"))
        }
    }
}
