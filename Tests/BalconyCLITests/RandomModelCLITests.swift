import Foundation
import Testing

/// `random-model --out` never replaces files silently (issue 16, defect 6): a mistyped --out
/// pointing at a real model folder would otherwise overwrite its weights with random ones.
@Suite struct RandomModelCLITests {
    static let config = #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 32, "max_position_embeddings": 64}"#

    @Test func refusesANonEmptyFolderUnlessForced() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("config.json")
        try Self.config.write(to: config, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let precious = out.appendingPathComponent("model.safetensors")
        try Data("real weights".utf8).write(to: precious)

        let refused = try CLIRunner.run(["random-model", "--config", config.path, "--out", out.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains(out.path) && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try Data(contentsOf: precious) == Data("real weights".utf8))

        let forced = try CLIRunner.run(["random-model", "--config", config.path, "--out", out.path, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try Data(contentsOf: precious) != Data("real weights".utf8))

        // An empty folder, or a new one, needs no --force.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(try CLIRunner.run(["random-model", "--config", config.path, "--out", empty.path]).status == 0)
        #expect(try CLIRunner.run(["random-model", "--config", config.path, "--out", dir.appendingPathComponent("new").path]).status == 0)
    }
}
