import Foundation
import Testing
@testable import BalconyCore

/// Several sequences run together through `runLayers(_:x:batch:scratch:)` give the same hidden
/// states as each sequence run alone, whatever their lengths and positions, and exactly the same
/// ones when each sequence contributes one decode row.
@Suite struct BatchForwardTests {
    static let prompts = [[1, 5, 9, 33, 2], [17, 63], [40, 8, 8, 12, 50, 3, 3], [7]]

    func hidden(_ m: LlamaModel, _ tokens: [Int], cache: KVCache) -> [Float] {
        let dim = m.config.dim
        var x = [Float](repeating: 0, count: tokens.count * dim)
        x.withUnsafeMutableBufferPointer { buf in
            m.embed(tokens, into: buf.baseAddress!)
            m.runLayers(0..<m.config.layerCount, x: buf.baseAddress!, tokens: tokens.count, start: cache.count, cache: cache)
        }
        cache.advance(by: tokens.count)
        return x
    }

    func batchedHidden(_ m: LlamaModel, _ seqs: [[Int]], caches: [KVCache], scratch: Scratch) -> [Float] {
        let dim = m.config.dim
        let all = seqs.flatMap { $0 }
        var x = [Float](repeating: 0, count: all.count * dim)
        let batch = zip(seqs, caches).map { BatchRows(cache: $1, start: $1.count, count: $0.count) }
        x.withUnsafeMutableBufferPointer { buf in
            m.embed(all, into: buf.baseAddress!)
            m.runLayers(0..<m.config.layerCount, x: buf.baseAddress!, batch: batch, scratch: scratch)
        }
        for (s, c) in zip(seqs, caches) { c.advance(by: s.count) }
        return x
    }

    @Test(arguments: [false, true])
    func raggedPrefillThenDecodeMatchesSequencesAlone(quantized: Bool) throws {
        var w = TinyModels.weights(TinyModels.config(bias: true, layers: 3))
        if quantized { w = TinyModels.quantizeAll(w) }
        let m = try LlamaModel(weights: w)
        let alone = Self.prompts.map { _ in m.makeCache() }
        let together = Self.prompts.map { _ in m.makeCache() }
        let scratch = Scratch()
        // Prefill all prompts in one batch, then three decode steps with one row per sequence.
        var expected = Self.prompts.flatMap { hidden(m, $0, cache: alone[Self.prompts.firstIndex(of: $0)!]) }
        var got = batchedHidden(m, Self.prompts, caches: together, scratch: scratch)
        #expect(zip(expected, got).map { abs($0 - $1) }.max()! < 1e-4)
        for step in 0..<3 {
            let next = Self.prompts.indices.map { [($0 * 7 + step * 3) % m.config.vocabSize] }
            expected = next.indices.flatMap { hidden(m, next[$0], cache: alone[$0]) }
            got = batchedHidden(m, next, caches: together, scratch: scratch)
            // Decode batches are within Linear.rowInvariantLimit: bit-identical, not just close.
            #expect(expected == got)
        }
        #expect(together.map(\.count) == alone.map(\.count))
    }
}
