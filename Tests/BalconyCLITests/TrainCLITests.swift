import Foundation
import Testing

/// `balcony train`, `eval` and the exit options of `generate`/`score`/`info`, end to end on stories260K.
@Suite(.serialized) struct TrainCLITests {
    static let data = CLIRunner.shared.appendingPathComponent("data/tinystories/heldout.txt").path

    /// One short run shared by the tests below (debug builds are slow; keep it small).
    static let run: (dir: URL, result: CLIRunner.Result) = {
        let dir = try! CLIRunner.temporaryDirectory()
        let r = try! CLIRunner.run(["train", CLIRunner.stories, "--data", data, "--exits", "1,3", "--steps", "6", "--batch-size", "2",
                                    "--seq-len", "64", "--lr", "3e-3", "--out", dir.path, "--log-every", "2", "--save-every", "3"])
        return (dir, r)
    }()

    @Test func trainWritesBalconiesCheckpointAndMetrics() throws {
        let (dir, r) = Self.run
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["balconies.safetensors", "training-state.safetensors", "metrics.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "\(f)")
        }
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let objs = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(objs.map { $0["step"] as! Int } == [0, 2, 4, 6])
        for o in objs {
            for key in ["tokens", "lr", "loss", "kl", "tokens_per_s"] { #expect(o[key] != nil, "\(key)") }
            #expect(((o["kl"] as? [String: Double]) ?? [:]).keys.sorted() == ["1", "3"])
        }
        let k0 = objs[0]["kl"] as! [String: Double], k6 = objs[3]["kl"] as! [String: Double]
        #expect(k6["1"]! < k0["1"]! && k6["3"]! < k0["3"]!)
    }

    @Test func exitsAreUsableEverywhere() throws {
        let file = Self.run.dir.appendingPathComponent("balconies.safetensors").path
        let g = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--exit", "1", "--prompt", "Once upon a time",
                                   "--temperature", "0", "--max-tokens", "12"])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(!g.stdout.isEmpty && g.stderr.contains("exit 1"))
        let full = try CLIRunner.run(["generate", CLIRunner.stories, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "12"])
        let spec = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--draft-exit", "3", "--prompt", "Once upon a time",
                                      "--temperature", "0", "--max-tokens", "12"])
        #expect(spec.status == 0, "\(spec.stderr)")
        #expect(spec.stdout == full.stdout)
        let sched = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--exit-schedule", "0:1,4:full,8:3",
                                       "--prompt", "Once", "--temperature", "0", "--max-tokens", "12"])
        #expect(sched.status == 0, "\(sched.stderr)")
        // --budget picks the same exit as --exit (the deepest that fits).
        let budget = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--budget", "0.5", "--prompt", "Once upon a time",
                                        "--temperature", "0", "--max-tokens", "12"])
        #expect(budget.stdout == g.stdout)
        let info = try CLIRunner.run(["info", CLIRunner.stories, "--balconies", file, "--json"])
        #expect(info.stdout.contains("\"idealSpeedup\""))
        let score = try CLIRunner.run(["score", CLIRunner.stories, "--balconies", file, "--exit", "3", "--text", "Lily saw a big red ball.", "--json"])
        #expect(score.status == 0, "\(score.stderr)")
        let eval = try CLIRunner.run(["eval", CLIRunner.stories, "--balconies", file, "--data", Self.data, "--max-tokens", "600", "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        #expect(eval.stdout.contains("early-exit"))
    }

    /// Self-speculative greedy output is the full model's greedy output, token for token, on 20
    /// prompts with trained balconies (drafting at the shallow and the deep exit, several lengths).
    @Test func speculativeGreedyIsFullGreedyOnTwentyPrompts() throws {
        let file = Self.run.dir.appendingPathComponent("balconies.safetensors").path
        let prompts = ["Once upon a time", "The little dog", "Tom and Lily", "One day, a big", "She was sad because",
                       "The sun was", "Max liked to", "In the park,", "A bird sang", "Mom said,",
                       "They went to the", "The cat and the mouse", "It was a rainy day.", "Ben had a red", "Sue found a",
                       "The old man", "At night, the", "\"Look!\" said", "The tree was very", "After lunch, they"]
        for (i, p) in prompts.enumerated() {
            let n = 8 + (i % 4) * 6
            let full = try CLIRunner.run(["generate", CLIRunner.stories, "--prompt", p, "--temperature", "0", "--max-tokens", "\(n)"])
            let spec = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--draft-exit", i % 2 == 0 ? "1" : "3",
                                          "--draft-tokens", "\(1 + i % 5)", "--prompt", p, "--temperature", "0", "--max-tokens", "\(n)"])
            #expect(full.status == 0 && spec.status == 0, "\(spec.stderr)")
            #expect(spec.stdout == full.stdout, "prompt \(p)")
        }
    }

    @Test func badExitRequestsAreClearErrors() throws {
        let file = Self.run.dir.appendingPathComponent("balconies.safetensors").path
        for args in [["--exit", "2"], ["--exit", "9"], ["--budget", "0.1"], ["--budget", "-1"], ["--exit-schedule", "0:1,500:3"], ["--exit-schedule", "3:1"]] {
            let r = try CLIRunner.run(["generate", CLIRunner.stories, "--balconies", file, "--max-tokens", "8"] + args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.lowercased().contains("error"), "\(args): \(r.stderr)")
        }
        let none = try CLIRunner.run(["generate", CLIRunner.stories, "--exit", "1", "--max-tokens", "4"])
        #expect(none.status != 0 && none.stderr.contains("--balconies"))
    }

    @Test func badTrainingSettingsFailBeforeWritingAnything() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run").path
        let empty = dir.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        let cases: [([String], String)] = [
            (["--exits", "0,2"], "exit 0"), (["--exits", "5"], "exit 5"), (["--seq-len", "4096"], "context"),
        ]
        for (extra, mention) in cases {
            let r = try CLIRunner.run(["train", CLIRunner.stories, "--data", Self.data, "--steps", "1", "--out", out] + extra)
            #expect(r.status != 0, "\(extra)")
            #expect(r.stderr.contains(mention), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(extra) created \(out)")
        }
        let e = try CLIRunner.run(["train", CLIRunner.stories, "--data", empty.path, "--steps", "1", "--out", out])
        #expect(e.status != 0 && !FileManager.default.fileExists(atPath: out), "\(e.stderr)")
        // An existing run is never overwritten without --resume.
        let again = try CLIRunner.run(["train", CLIRunner.stories, "--data", Self.data, "--steps", "1", "--out", Self.run.dir.path])
        #expect(again.status != 0 && again.stderr.contains("--resume"))
    }
}
