import Foundation
import Testing
@testable import BalconyCore

/// A stand-in vocabulary for tiny random models: token i is the text "<i>".
struct ToyTokenizer: Tokenizer {
    var vocabularySize = 64
    var bosTokenId: Int? = 1
    var eosTokenIds: Set<Int> = []
    var addsBOS = true
    var kind = "toy"
    func encode(_ text: String) -> [Int] { text.unicodeScalars.map { Int($0.value) % 60 + 3 } }
    func piece(for id: Int) -> String { "<\(id)>" }
    func bytes(for id: Int, previous: Int?) -> [UInt8] { Array("<\(id)>".utf8) }
}

@Suite struct SpeculativeDecodingTests {
    func greedyFull(_ m: BalconyModel, _ prompt: [Int], _ n: Int) throws -> [Int] {
        let g = Generator(model: m.base, tokenizer: ToyTokenizer(), balconies: m, exit: .full)
        return try g.generate(prompt: prompt, parameters: GenerationParameters(maxTokens: n, sampling: .greedy)) { _ in true }.0
    }

    @Test(arguments: [1, 2, 3, 4])
    func greedyOutputIsTheFullModels(draftExit: Int) throws {
        let m = try ExitSwitchingTests.model()
        var g = TinyModels.LCG(state: UInt64(draftExit))
        for trial in 0..<4 {
            let prompt = [1] + (0..<(1 + trial * 2)).map { _ in Int((g.next() + 1) * 31) % 64 }
            let n = 5 + trial * 4
            let want = try greedyFull(m, prompt, n)
            for draft in [1, 4] {
                let spec = try SpeculativeDecoder(model: m, tokenizer: ToyTokenizer(), draftExit: draftExit, draftTokens: draft)
                let (got, _, stats) = try spec.generate(prompt: prompt, parameters: GenerationParameters(maxTokens: n, sampling: .greedy)) { _ in true }
                #expect(got == want, "exit \(draftExit), \(draft) drafts, prompt \(prompt)")
                #expect(stats.drafted >= stats.accepted)
            }
        }
    }

    /// The verification pass (layers k..N-1 over the drafted positions at once) gives exactly the
    /// logits that decoding the same tokens one by one at full depth gives, not just close ones, so
    /// greedy speculative output cannot differ from greedy output even at a near-tie.
    @Test(arguments: [1, 3])
    func verificationLogitsAreBitIdenticalToDecoding(draftExit: Int) throws {
        let m = try ExitSwitchingTests.model()
        let prompt = [1, 5, 9, 33, 2, 17], drafts = [63, 40, 8, 8, 12]
        let drafting = m.makeCache(), decoding = m.makeCache()
        _ = try m.forward(prompt, cache: drafting, exit: .full)
        _ = try m.forward(prompt, cache: decoding, exit: .full)
        var expected: [Float] = []
        for t in drafts {
            _ = try m.forward([t], cache: drafting, exit: .exit(draftExit))
            expected += try m.forward([t], cache: decoding, exit: .full)
        }
        let verified = try m.logits(cache: drafting, exit: .full, from: prompt.count)
        #expect(verified == expected)
    }

    /// The benchmark's oracle mode: drafts are the full model's own greedy tokens, so all are accepted.
    @Test func oracleDraftsAreAllAccepted() throws {
        let m = try ExitSwitchingTests.model()
        let want = try greedyFull(m, [1, 4, 9], 20)
        var spec = try SpeculativeDecoder(model: m, tokenizer: ToyTokenizer(), draftExit: 1, draftTokens: 4)
        spec.oracle = want
        let (got, _, s) = try spec.generate(prompt: [1, 4, 9], parameters: GenerationParameters(maxTokens: 20, sampling: .greedy)) { _ in true }
        #expect(got == want)
        #expect(s.acceptanceRate == 1)
    }

    /// A draft that always agrees (the exit is a copy of... the full model itself is not an exit, so
    /// check the bookkeeping instead: accepted + corrections = generated tokens).
    @Test func countsAddUp() throws {
        let m = try ExitSwitchingTests.model()
        let spec = try SpeculativeDecoder(model: m, tokenizer: ToyTokenizer(), draftExit: 4, draftTokens: 4)
        let (out, _, s) = try spec.generate(prompt: [1, 2, 3], parameters: GenerationParameters(maxTokens: 30, sampling: .greedy)) { _ in true }
        #expect(out.count == 30)
        #expect(s.accepted <= out.count && out.count <= s.accepted + s.rounds + 1)
    }

    /// With temperature > 0 the tokens follow the full model's distribution: the empirical law of
    /// the second generated token over many seeds matches its exact law under the full model,
    /// computed by enumerating the first token.
    @Test func samplingKeepsTheFullDistribution() throws {
        let m = try ExitSwitchingTests.model()
        let prompt = [1, 7, 9]
        let sampling = { (seed: UInt64) in SamplingParameters(temperature: 0.8, topK: 8, seed: seed) }
        let sampler = Sampler(sampling(0))
        func law(_ exit: ExitChoice) throws -> [Double] {
            let first = sampler.distribution(try m.forward(prompt, cache: m.makeCache(), exit: exit))
            var second = [Double](repeating: 0, count: 64)
            for x in 0..<64 where first[x] > 0 {
                let p = sampler.distribution(try m.forward(prompt + [x], cache: m.makeCache(), exit: exit))
                for y in 0..<64 { second[y] += Double(first[x]) * Double(p[y]) }
            }
            return second
        }
        let exact = try law(.full)
        let runs = 1500
        var counts = [Double](repeating: 0, count: 64)
        let s = try SpeculativeDecoder(model: m, tokenizer: ToyTokenizer(), draftExit: 2, draftTokens: 3)
        for seed in 1...UInt64(runs) {
            let out = try s.generate(prompt: prompt, parameters: GenerationParameters(maxTokens: 2, sampling: sampling(seed))) { _ in true }.0
            counts[out[1]] += 1
        }
        // With at most 64 outcomes of which few carry mass (top-k 8 at each step), sampling noise
        // in total variation is about 0.03-0.05 for 1500 draws.
        let tv = zip(counts, exact).map { abs($0 / Double(runs) - $1) }.reduce(0, +) / 2
        #expect(tv < 0.07, "total variation to the exact law \(tv)")
        // The draft exit's own law is far from the full model's, so leaking it would fail the test.
        let tvExit = zip(try law(.exit(2)), exact).map { abs($0 - $1) }.reduce(0, +) / 2
        #expect(tvExit > 0.2, "the exit's law is too close to the full model's (\(tvExit)) for this test to mean anything")
    }
}
