import Foundation
import Testing
@testable import BalconyCore

/// Changing the exit between tokens gives exactly the distribution the new exit would give had it
/// processed the whole sequence (DESIGN.md, "Run-time semantics").
@Suite struct ExitSwitchingTests {
    static let tokens = [1, 5, 9, 33, 2, 17, 63, 40, 8, 8, 12, 50, 3, 3, 7, 21]

    static func model() throws -> BalconyModel {
        let w = TinyModels.weights(TinyModels.config(layers: 5))
        let base = try LlamaModel(weights: w)
        let balconies = [1, 2, 3, 4].map { BalconyParameters.randomInitialized(config: w.config, exit: $0, seed: UInt64($0)) }
            .map { b -> BalconyParameters in
                var b = b
                // Larger than the 0.02 init so each exit's output clearly differs from the others.
                b.forEachTensor { name, t in if name.hasSuffix("proj.weight") { t = t.map { $0 * 10 } } }
                return b
            }
        return try BalconyModel(base: base, balconies: balconies)
    }

    func maxDiff(_ a: [Float], _ b: some Collection<Float>) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

    /// Reference: a fresh cache that sees the whole prefix at one exit.
    func reference(_ m: BalconyModel, _ prefix: [Int], _ exit: ExitChoice) throws -> [Float] {
        try m.forward(prefix, cache: m.makeCache(), exit: exit)
    }

    @Test(arguments: [
        [ExitChoice.exit(1), .exit(3), .exit(1), .full, .exit(2), .exit(4), .exit(1)],
        [.full, .exit(1), .exit(4), .exit(2), .full, .exit(3)],
        [.exit(4), .exit(3), .exit(2), .exit(1), .full],
    ])
    func switchingMatchesFreshRuns(schedule: [ExitChoice]) throws {
        let m = try Self.model()
        let cache = m.makeCache()
        // Feed the tokens one or two at a time, changing exit at every step.
        var pos = 0, step = 0
        while pos < Self.tokens.count {
            let n = (step % 3 == 2) ? 2 : 1
            let chunk = Array(Self.tokens[pos..<min(pos + n, Self.tokens.count)])
            let exit = schedule[step % schedule.count]
            let got = try m.forward(chunk, cache: cache, exit: exit)
            pos += chunk.count
            let want = try reference(m, Array(Self.tokens[0..<pos]), exit)
            #expect(maxDiff(got, want) < 1e-4, "step \(step) at exit \(exit)")
            step += 1
        }
    }

    @Test func exitsReallyDiffer() throws {
        let m = try Self.model()
        let a = try reference(m, Self.tokens, .exit(1)), b = try reference(m, Self.tokens, .exit(3))
        #expect(maxDiff(a, b) > 1e-2)
    }

    /// Verification after drafting at exit k reuses layers 0..<k and runs the rest.
    @Test func logitsAfterDraftingMatchTheFullModel() throws {
        let m = try Self.model()
        let cache = m.makeCache()
        _ = try m.forward(Array(Self.tokens[0..<6]), cache: cache, exit: .full)
        for t in Self.tokens[6..<10] { _ = try m.forward([t], cache: cache, exit: .exit(2)) }
        #expect(cache.filled[1] == 10 && cache.filled[2] == 6)
        let verify = try m.logits(cache: cache, exit: .full, from: 6)
        #expect(cache.filled.allSatisfy { $0 == 10 })
        let full = try m.forward(Array(Self.tokens[0..<10]), cache: m.makeCache(), exit: .full, outputs: .all)
        let v = m.config.vocabSize
        #expect(maxDiff(verify, full[(6 * v)...]) < 1e-4)
    }

    @Test func truncateRollsBackEveryDepth() throws {
        let m = try Self.model()
        let cache = m.makeCache()
        _ = try m.forward(Array(Self.tokens[0..<8]), cache: cache, exit: .exit(3))
        cache.truncate(to: 5)
        #expect(cache.count == 5 && cache.filled.allSatisfy { $0 <= 5 })
        let got = try m.forward(Array(Self.tokens[5..<9]), cache: cache, exit: .exit(1))
        #expect(maxDiff(got, try reference(m, Array(Self.tokens[0..<9]), .exit(1))) < 1e-4)
    }
}
