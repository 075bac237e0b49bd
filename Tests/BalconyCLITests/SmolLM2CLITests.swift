import Foundation
import Testing

/// The commands a new user runs first, on the real quantized model (SmolLM2-135M-Instruct, Q4_1;
/// `make test` fetches it into the cache). Its values against llama.cpp are checked in
/// BalconyCoreTests' SmolLM2Tests.
@Suite(.enabled(if: SmolLM2File.path != nil, "SmolLM2 is not in the cache: run scripts/fetch_smollm2.sh"))
struct SmolLM2CLITests {
    @Test func infoListsTheQuantizedTypesAndTheBytesReadPerToken() throws {
        let r = try CLIRunner.run(["info", SmolLM2File.path!, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(info?["matrix_types"] as? [String: Int] == ["Q4_1": 210, "Q8_0": 1])
        #expect(info?["layers"] as? Int == 30)
        // 30 layers of Q4_1 (20 bytes per 32 weights), their norms, the Q8_0 head and one embedding row.
        let layer = (576 * 576 * 2 + 192 * 576 * 2 + 1536 * 576 * 3) / 32 * 20 + 2 * 576 * 4
        #expect(info?["bytes_per_token"] as? Int == 30 * layer + 49152 * 576 / 32 * 34 + 576 / 32 * 34)
    }

    /// The first chat prompt of the llama.cpp fixture: its greedy answer starts the same way.
    @Test func generateAnswersAChatPromptAsLlamaCppDoes() throws {
        let prompt = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        let r = try CLIRunner.run(["generate", SmolLM2File.path!, "--prompt", prompt, "--temperature", "0", "--max-tokens", "6"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("L'Étoile,"), "\(r.stdout)")
        #expect(r.stderr.contains("prompt tokens: 37"))
    }
}

enum SmolLM2File {
    static var path: String? {
        let env = ProcessInfo.processInfo.environment
        let cache = env["BALCONY_CACHE"] ?? (env["XDG_CACHE_HOME"].map { $0 + "/balcony" } ?? NSHomeDirectory() + "/.cache/balcony")
        return [env["BALCONY_SMOLLM2"], cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"].compactMap { $0 }
            .first { FileManager.default.fileExists(atPath: $0) }
    }
}
