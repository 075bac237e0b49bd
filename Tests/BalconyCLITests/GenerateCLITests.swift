import Foundation
import Testing

/// `balcony generate` end to end on the real stories260K model.
@Suite struct GenerateCLITests {
    /// llama2.c's `run stories260K.bin -z tok512.bin -t 0 -n 256` runs 256 positions from BOS and so
    /// prints 256 tokens, then a newline of its own; `--max-tokens 256` prints the same tokens.
    @Test func greedyFromBOSMatchesLlama2c() throws {
        let golden = try String(contentsOf: CLIRunner.shared.appendingPathComponent("models/stories260K/greedy-bos-255.txt"), encoding: .utf8)
        let r = try CLIRunner.run(["generate", CLIRunner.stories, "--temperature", "0", "--max-tokens", "256"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout + "\n" == golden)
        #expect(r.stderr.contains("decode"))
    }

    /// The same story when decode reads the lossless packed copy of the F32 weights (stories260K
    /// fits in cache, so `auto` leaves it plain; `on` packs the 21 of 26 matrices whose rows are
    /// a multiple of 32 long).
    @Test func greedyWithPackedF32WeightsMatchesLlama2c() throws {
        let golden = try String(contentsOf: CLIRunner.shared.appendingPathComponent("models/stories260K/greedy-bos-255.txt"), encoding: .utf8)
        let r = try CLIRunner.run(["generate", CLIRunner.stories, "--temperature", "0", "--max-tokens", "256", "--pack-f32", "on"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout + "\n" == golden)
    }

    @Test func greedyContinuationsMatchTransformers() throws {
        let fixture = try StoriesFixture.load()
        for c in fixture.prompts {
            let r = try CLIRunner.run(["generate", CLIRunner.stories, "--prompt", c.prompt, "--temperature", "0",
                                       "--max-tokens", "\(c.ids.count)"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == c.text, "prompt \(c.prompt)")
        }
    }

    @Test func seededSamplingIsReproducible() throws {
        let args = ["generate", CLIRunner.stories, "--prompt", "Once", "--temperature", "0.9", "--top-k", "40", "--max-tokens", "30", "--seed", "42"]
        let a = try CLIRunner.run(args)
        let b = try CLIRunner.run(args)
        let c = try CLIRunner.run(args.dropLast() + ["43"])
        #expect(a.status == 0)
        #expect(a.stdout == b.stdout)
        #expect(a.stdout != c.stdout)
    }

    @Test func promptLongerThanContextIsAClearError() throws {
        let prompt = String(repeating: "Once upon a time there was a cat. ", count: 120)
        let r = try CLIRunner.run(["generate", CLIRunner.stories, "--prompt", prompt, "--max-tokens", "4"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("context"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func missingTokenizerIsAClearError() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model.bin")
        try FileManager.default.copyItem(atPath: CLIRunner.stories, toPath: model.path)
        let r = try CLIRunner.run(["generate", model.path, "--max-tokens", "4"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--tokenizer"))
        let ok = try CLIRunner.run(["generate", model.path, "--tokenizer", CLIRunner.shared.appendingPathComponent("models/stories260K/tok512.bin").path,
                                    "--max-tokens", "4", "--temperature", "0"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }
}
