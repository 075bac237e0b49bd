import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `balcony eval` end to end on stories260K: the files it writes, perplexity equal to `balcony
/// score`'s, and clear errors for bad input.
@Suite(.serialized) struct EvalCLITests {
    static let tasks = CLIRunner.packageRoot.appendingPathComponent("Tests/BalconyCoreTests/Fixtures/eval")

    /// About 700 tokens of held-out text: more than one 512-token window.
    static func sampleText(in dir: URL) throws -> String {
        let heldout = try String(contentsOf: CLIRunner.shared.appendingPathComponent("data/tinystories/heldout.txt"), encoding: .utf8)
        let url = dir.appendingPathComponent("sample.txt")
        try String(heldout.prefix(2500)).write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static func json(_ s: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(s.utf8)) as! [String: Any]
    }

    @Test func evalWritesResultsReportAndChartAndMatchesScore() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = try Self.sampleText(in: dir)
        let out = dir.appendingPathComponent("eval").path
        let r = try CLIRunner.run(["eval", CLIRunner.stories, "--random-init-exits", "1,3", "--data", text,
                                   "--tasks", Self.tasks.appendingPathComponent("generic.jsonl").path, "--speed-tokens", "2", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("| method | exit | cost |"))
        let results = try Self.json(String(contentsOfFile: out + "/results.json", encoding: .utf8))
        for key in ["model", "balconies", "settings", "shortgpt", "speed", "data", "tasks"] { #expect(results[key] != nil, "\(key)") }
        #expect(((results["model"] as! [String: Any])["fingerprint"] as! String).count == 64)
        let data = (results["data"] as! [[String: Any]])[0]
        #expect((data["sha256"] as! String).count == 64)
        let rows = data["rows"] as! [[String: Any]]
        #expect(rows.map { $0["method"] as! String } == ["full", "balcony", "early-exit", "shortgpt", "balcony", "early-exit", "shortgpt"])
        for row in rows {
            for key in ["method", "exit", "cost", "perplexity", "bits_per_byte", "kl", "agreement"] { #expect(row[key] != nil, "\(key)") }
        }
        #expect(rows[0]["exit"] is NSNull && rows[1]["exit"] as? Int == 1)
        let task = (results["tasks"] as! [[String: Any]])[0]
        #expect((task["rows"] as! [[String: Any]]).allSatisfy { $0["acc"] != nil && $0["acc_norm"] != nil })

        // Perplexity is exp of `balcony score`'s mean NLL, for the full model and at an exit.
        let full = try Self.json(CLIRunner.run(["score", CLIRunner.stories, "--file", text, "--json"]).stdout)
        #expect(abs(rows[0]["perplexity"] as! Double - exp(full["mean_nll"] as! Double)) < 1e-9 * (rows[0]["perplexity"] as! Double))
        let exit3 = try Self.json(CLIRunner.run(["score", CLIRunner.stories, "--random-exits", "1,3", "--exit", "3", "--file", text, "--json"]).stdout)
        #expect(abs(rows[4]["perplexity"] as! Double - exp(exit3["mean_nll"] as! Double)) < 1e-9 * (rows[4]["perplexity"] as! Double))
        #expect((rows[0]["kl"] as! Double) == 0 && (rows[0]["agreement"] as! Double) == 1)

        let report = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(report.contains("quality-vs-cost.svg") && report.contains("## Task generic"))
        let svg = try Data(contentsOf: URL(fileURLWithPath: out + "/quality-vs-cost.svg"))
        #expect(XMLParser(data: svg).parse())
        #expect(FileManager.default.fileExists(atPath: out + "/quality-vs-cost-generic.svg"))
    }

    @Test func badInputIsAClearError() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = try Self.sampleText(in: dir)
        let empty = dir.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        let badTask = dir.appendingPathComponent("bad.jsonl")
        try #"{"context": "Lily saw a", "choices": ["dog", "cat"], "label": 0}"#.appending("\n")
            .appending(#"{"context": "Tom saw a", "choices": ["dog", "cat"], "label": 5}"#).write(to: badTask, atomically: true, encoding: .utf8)

        // Balconies trained on another model of the same shape.
        let config = dir.appendingPathComponent("config.json")
        try #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "tie_word_embeddings": true}"#
            .write(to: config, atomically: true, encoding: .utf8)
        let other = dir.appendingPathComponent("other").path
        let made = try CLIRunner.run(["random-model", "--config", config.path, "--out", other, "--seed", "3"])
        #expect(made.status == 0, "\(made.stderr)")
        let trained = try CLIRunner.run(["train", other, "--tokenizer", CLIRunner.shared.appendingPathComponent("models/stories260K/tok512.bin").path,
                                         "--data", text, "--exits", "2", "--steps", "1", "--batch-size", "1", "--seq-len", "16",
                                         "--out", dir.appendingPathComponent("run").path])
        #expect(trained.status == 0, "\(trained.stderr)")
        let foreign = dir.appendingPathComponent("run/balconies.safetensors").path

        let cases: [([String], String)] = [
            (["--data", empty.path], "has no text to evaluate"),
            (["--data", dir.appendingPathComponent("missing.txt").path], "cannot read"),
            (["--tasks", badTask.path, "--baselines", "early-exit"], "bad.jsonl:2: label 5 is out of range for 2 choices"),
            (["--data", text, "--balconies", foreign], "trained for"),
            (["--data", text, "--baselines", "layerskip"], "unknown baseline 'layerskip'"),
            (["--data", text, "--exits", "7"], "exit 7 is outside"),
        ]
        for (args, message) in cases {
            let r = try CLIRunner.run(["eval", CLIRunner.stories, "--speed-tokens", "0"] + args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
    }
}
