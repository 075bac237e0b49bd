import Foundation
import Testing

/// `--balcony-type` and `eval --balcony-types` end to end on stories260K: balconies trained in F32,
/// run as GGML blocks.
@Suite(.serialized) struct QuantizedBalconyCLITests {
    static let text = CLIRunner.shared.appendingPathComponent("data/tinystories/heldout.txt").path

    /// A few training steps: enough for balconies that are not random.
    static let trained: (dir: URL, result: CLIRunner.Result) = {
        let dir = try! CLIRunner.temporaryDirectory()
        let r = try! CLIRunner.run(["train", CLIRunner.stories, "--data", text, "--exits", "2,3", "--steps", "4", "--batch-size", "2",
                                    "--seq-len", "64", "--lr", "3e-3", "--out", dir.path, "--log-every", "2"])
        return (dir, r)
    }()

    static func json(_ s: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(s.utf8)) as! [String: Any]
    }

    @Test func evalComparesEachBalconyTypeAndMatchesScore() throws {
        let (dir, t) = Self.trained
        #expect(t.status == 0, "\(t.stderr)")
        let file = dir.appendingPathComponent("balconies.safetensors").path
        let sample = dir.appendingPathComponent("sample.txt")
        try String(try String(contentsOfFile: Self.text, encoding: .utf8).prefix(1500)).write(to: sample, atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["eval", CLIRunner.stories, "--balconies", file, "--balcony-types", "f32,q8_0,q4_0",
                                   "--data", sample.path, "--baselines", "none", "--speed-tokens", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = ((try Self.json(r.stdout))["data"] as! [[String: Any]])[0]["rows"] as! [[String: Any]]
        let labels = rows.map { $0["method"] as! String }
        #expect(labels.count == 7, "\(labels)")
        #expect(labels.contains { $0.hasSuffix("@Q8_0") } && labels.contains { $0.hasSuffix("@Q4_0") })
        func row(_ suffix: String, exit: Int) -> [String: Any]? {
            rows.first { ($0["exit"] as? Int) == exit && (($0["method"] as! String) == "balcony" ? suffix == "F32" : ($0["method"] as! String).hasSuffix("@" + suffix)) }
        }
        for exit in [2, 3] {
            let f32 = try #require(row("F32", exit: exit)), q8 = try #require(row("Q8_0", exit: exit)), q4 = try #require(row("Q4_0", exit: exit))
            // Smaller balconies cost less; 8 bits change perplexity a little, 4 bits more.
            #expect((q8["cost"] as! Double) < (f32["cost"] as! Double) && (q4["cost"] as! Double) < (q8["cost"] as! Double))
            let p32 = f32["perplexity"] as! Double, p8 = q8["perplexity"] as! Double
            #expect(abs(p8 / p32 - 1) < 0.02, "exit \(exit): F32 \(p32), Q8_0 \(p8)")
            // The same figure as `balcony score` with the same flag.
            let s = try CLIRunner.run(["score", CLIRunner.stories, "--balconies", file, "--exit", "\(exit)", "--balcony-type", "q8_0",
                                       "--file", sample.path, "--json"])
            #expect(s.status == 0, "\(s.stderr)")
            let nll = try Self.json(s.stdout)["mean_nll"] as! Double
            #expect(abs(exp(nll) - p8) < 1e-9 * p8)
        }
    }

    @Test func generateRunsQuantizedBalconiesAndBaseResolves() throws {
        let (dir, t) = Self.trained
        #expect(t.status == 0, "\(t.stderr)")
        let file = dir.appendingPathComponent("balconies.safetensors").path
        var outputs: [String: String] = [:]
        for type in ["q8_0", "Q5_1", "base"] {
            let r = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--exit", "2", "--balcony-type", type,
                                       "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "12"])
            #expect(r.status == 0, "\(type): \(r.stderr)")
            #expect(!r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(type)")
            outputs[type] = r.stdout
        }
        // stories260K is F32: 'base' has no block type to follow and runs the balconies as Q8_0.
        #expect(outputs["base"] == outputs["q8_0"])
    }

    @Test func unsupportedTypesAreClearErrors() throws {
        for (args, message) in [
            (["generate", CLIRunner.stories, "--random-exits", "2", "--exit", "2", "--balcony-type", "q4_K"], "balconies cannot run as 'q4_K'"),
            (["eval", CLIRunner.stories, "--data", Self.text, "--balcony-types", "f32,int4"], "balconies cannot run as 'int4'"),
        ] {
            let r = try CLIRunner.run(args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(message) && r.stderr.contains("Q8_0"), "\(r.stderr)")
        }
    }
}
