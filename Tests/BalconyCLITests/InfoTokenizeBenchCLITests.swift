import Foundation
import Testing

@Suite struct InfoTokenizeBenchCLITests {
    struct Info: Decodable {
        var architecture: String
        var parameters: Int
        var layers: Int
        var dim: Int
        var kv_heads: Int
        var vocab_size: Int
        var context_length: Int
        var tensor_types: [String]
        var bytes_per_token: Int
        var packed_f32_matrices: Int
        var gemm_kernel: String
        var tokenizer: Tok?
        struct Tok: Decodable { var vocab_size: Int; var bos_token_id: Int? }
    }

    @Test func infoDescribesStories260K() throws {
        let r = try CLIRunner.run(["info", CLIRunner.stories, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try JSONDecoder().decode(Info.self, from: Data(r.stdout.utf8))
        #expect(info.architecture == "llama")
        #expect(info.layers == 5 && info.dim == 64 && info.kv_heads == 4)
        #expect(info.vocab_size == 512 && info.context_length == 512)
        #expect(info.tensor_types == ["F32"])
        #expect(info.tokenizer?.vocab_size == 512)
        #expect(info.tokenizer?.bos_token_id == 1)
        #expect(info.gemm_kernel.hasPrefix("balcony-") || info.gemm_kernel.contains("OpenBLAS") || info.gemm_kernel == "Accelerate")
        let text = try CLIRunner.run(["info", CLIRunner.stories])
        #expect(text.stdout.contains("5 x (dim 64"))
        #expect(text.stdout.contains("matrix kernel  \(info.gemm_kernel)"))
        #expect(info.packed_f32_matrices == 0, "a model that fits in cache is not packed by default")
        let on = try CLIRunner.run(["info", CLIRunner.stories, "--json", "--pack-f32", "on"])
        let packed = try JSONDecoder().decode(Info.self, from: Data(on.stdout.utf8))
        // Five layers' q, k, v, o, gate and up (64 wide) and the head; down_proj rows are 172 long.
        #expect(packed.packed_f32_matrices == 5 * 6 + 1)
        #expect(packed.bytes_per_token < info.bytes_per_token)
        let bad = try CLIRunner.run(["info", CLIRunner.stories, "--pack-f32", "sometimes"])
        #expect(bad.status != 0)
    }

    @Test func tokenizeMatchesSentencePiece() throws {
        let f = try StoriesFixture.load().prompts[0]
        let r = try CLIRunner.run(["tokenize", CLIRunner.stories, "--text", f.prompt, "--bos"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == f.prompt_ids.map(String.init).joined(separator: " "))
        let tok = CLIRunner.shared.appendingPathComponent("models/stories260K/tok512.bin").path
        let j = try CLIRunner.run(["tokenize", tok, "--text", f.prompt, "--json"])
        struct Out: Decodable { var ids: [Int]; var pieces: [String] }
        let out = try JSONDecoder().decode(Out.self, from: Data(j.stdout.utf8))
        #expect(out.ids == Array(f.prompt_ids.dropFirst()))
        #expect(out.pieces.count == out.ids.count)
    }

    /// Vocabulary-only GGUF files of architectures Balcony does not run (DeepSeek, Refact):
    /// the ids are llama.cpp's `test-tokenizer-0` vectors for the same strings.
    @Test func tokenizeReadsVocabularyOnlyGGUF() throws {
        let dir = CLIRunner.shared.appendingPathComponent("tokenizers/llama.cpp-vocab")
        for (name, line) in [("deepseek-llm", 32), ("refact", 32), ("refact", 19)] {
            let base = dir.appendingPathComponent("ggml-vocab-\(name).gguf")
            let inputs = try String(contentsOf: base.appendingPathExtension("inp"), encoding: .utf8)
                .components(separatedBy: "\n__ggml_vocab_test__\n")
            let outputs = try String(contentsOf: base.appendingPathExtension("out"), encoding: .utf8)
                .components(separatedBy: "\n")
            let r = try CLIRunner.run(["tokenize", base.path, "--text", inputs[line]])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == outputs[line].trimmingCharacters(in: .whitespaces) + "\n", "\(name): \(inputs[line].debugDescription)")
        }
        // A broken vocabulary is reported as a tokenizer error, not as a model that failed to load.
        let tmp = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let bare = tmp.appendingPathComponent("bare.gguf")
        var bytes = Array("GGUF".utf8) + [3, 0, 0, 0]
        bytes += [UInt8](repeating: 0, count: 16)
        try Data(bytes).write(to: bare)
        let bad = try CLIRunner.run(["tokenize", bare.path, "--text", "x"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("tokenizer.ggml.model"), "\(bad.stderr)")
    }

    @Test func benchPrintsJSONFigures() throws {
        let r = try CLIRunner.run(["bench", CLIRunner.stories, "--prompt-tokens", "32", "--gen-tokens", "8", "--repeats", "1", "--threads", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((obj?["prefill_tokens_per_s"] as? Double ?? 0) > 0)
        #expect((obj?["decode_tokens_per_s"] as? Double ?? 0) > 0)
        #expect((obj?["read_bandwidth_gb_s"] as? Double ?? 0) > 0)
        #expect(obj?["threads"] as? Int == 1)
        // The FMA peak for each thread count (here one) and SGEMM and prefill as fractions of it.
        let peaks = obj?["fma_peak_gflops"] as? [Double] ?? []
        #expect(peaks.count == 1 && peaks[0] > 0)
        #expect((obj?["gemm_peak_fraction"] as? Double ?? 0) > 0)
        #expect((obj?["prefill_peak_fraction"] as? Double ?? 0) > 0)
        #expect((obj?["gemm_kernel"] as? String ?? "").isEmpty == false)
    }
}

/// Bad input: each case is one line on stderr naming the problem, and a non-zero exit.
@Suite struct BadInputCLITests {
    func expectCleanFailure(_ r: CLIRunner.Result, mentions: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("error: "), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.lowercased().contains(mentions.lowercased()), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, sourceLocation: sourceLocation)
    }

    @Test func truncatedLlama2cFile() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Data(contentsOf: URL(fileURLWithPath: CLIRunner.stories))
        let cut = dir.appendingPathComponent("cut.bin")
        try data.prefix(data.count / 2).write(to: cut)
        expectCleanFailure(try CLIRunner.run(["info", cut.path]), mentions: "truncated")
    }

    @Test func headerDisagreeingWithFile() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var data = try Data(contentsOf: URL(fileURLWithPath: CLIRunner.stories))
        data.append(Data(repeating: 0, count: 4096))
        let bad = dir.appendingPathComponent("long.bin")
        try data.write(to: bad)
        expectCleanFailure(try CLIRunner.run(["info", bad.path]), mentions: "header")
    }

    @Test func notAModel() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("notes.bin")
        try Data("this is not a model, just some text that is long enough".utf8).write(to: f)
        let r = try CLIRunner.run(["info", f.path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("error: "))
        expectCleanFailure(try CLIRunner.run(["info", dir.appendingPathComponent("absent.gguf").path]), mentions: "absent.gguf")
    }
}
