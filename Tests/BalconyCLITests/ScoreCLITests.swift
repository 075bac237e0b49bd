import Foundation
import Testing

@Suite struct ScoreCLITests {
    struct Output: Decodable {
        var tokens: [Int]
        var nll: [Double]
        var mean_nll: Double
        var perplexity: Double
    }

    /// Per-token NLLs agree with transformers running the same weights.
    @Test func matchesTransformers() throws {
        let f = try StoriesFixture.load().score
        let r = try CLIRunner.run(["score", CLIRunner.stories, "--text", f.text, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONDecoder().decode(Output.self, from: Data(r.stdout.utf8))
        #expect(out.tokens == Array(f.ids.dropFirst()))
        #expect(out.nll.count == f.nll.count)
        for (a, b) in zip(out.nll, f.nll) { #expect(abs(a - b) < 1e-4) }
        #expect(abs(out.perplexity - f.perplexity) < 1e-3)
        #expect(abs(out.perplexity - exp(out.mean_nll)) < 1e-9)
    }

    @Test func longFileIsScoredInWindows() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let heldout = try String(contentsOf: CLIRunner.shared.appendingPathComponent("data/tinystories/heldout.txt"), encoding: .utf8)
        let file = dir.appendingPathComponent("long.txt")
        try String(heldout.prefix(4000)).write(to: file, atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["score", CLIRunner.stories, "--file", file.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONDecoder().decode(Output.self, from: Data(r.stdout.utf8))
        #expect(out.tokens.count > 512)  // longer than the 512-token context
        #expect(out.perplexity > 1 && out.perplexity < 20)
    }

    @Test func needsExactlyOneInput() throws {
        let r = try CLIRunner.run(["score", CLIRunner.stories])
        #expect(r.status != 0)
        let missing = try CLIRunner.run(["score", CLIRunner.stories, "--file", "/nonexistent/file.txt"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("/nonexistent/file.txt"))
    }
}
