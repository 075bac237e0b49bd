import Foundation
import Testing
@testable import BalconyCore

/// The forward pass against itself in every way it can be cut: prefill vs token-by-token decode,
/// chunked prefill, Q8_0 vs the same dequantized weights, and the two RoPE pairings.
@Suite struct ModelForwardTests {
    static let tokens = [1, 5, 9, 33, 2, 17, 63, 40, 8, 8, 12, 50]

    func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test(arguments: [false, true])
    func decodeMatchesPrefill(bias: Bool) throws {
        let m = try LlamaModel(weights: TinyModels.weights(TinyModels.config(bias: bias)))
        let all = try m.forward(Self.tokens, cache: m.makeCache(), outputs: .all)
        let cache = m.makeCache()
        let v = m.config.vocabSize
        for (i, t) in Self.tokens.enumerated() {
            let step = try m.forward([t], cache: cache)
            #expect(maxDiff(step, Array(all[(i * v)..<((i + 1) * v)])) < 1e-4, "position \(i)")
        }
        #expect(cache.count == Self.tokens.count)
    }

    @Test func chunkedPrefillMatchesOnePrefill() throws {
        let m = try LlamaModel(weights: TinyModels.weights(TinyModels.config(kvHeads: 1)))
        let one = try m.forward(Self.tokens, cache: m.makeCache())
        let cache = m.makeCache()
        _ = try m.forward(Array(Self.tokens[0..<5]), cache: cache)
        let two = try m.forward(Array(Self.tokens[5...]), cache: cache)
        #expect(maxDiff(one, two) < 1e-4)
    }

    /// Prompts longer than the small-batch limit take prefill's attention (tasks of one head and
    /// up to 64 queries on the threads, keys only up to each block's last query): several blocks,
    /// a last partial block, and a second chunk that starts past position 0 all give what
    /// decoding token by token gives.
    @Test func longPrefillMatchesDecode() throws {
        var c = TinyModels.config(kvHeads: 1)
        c.contextLength = 160
        let m = try LlamaModel(weights: TinyModels.weights(c))
        let tokens = (0..<150).map { ($0 * 37 + 11) % c.vocabSize }
        let v = c.vocabSize
        let all = try m.forward(tokens, cache: m.makeCache(), outputs: .all)
        let chunked = m.makeCache()
        let first = try m.forward(Array(tokens[0..<70]), cache: chunked, outputs: .all)
        let second = try m.forward(Array(tokens[70...]), cache: chunked, outputs: .all)
        #expect(maxDiff(first + second, all) < 1e-4)
        let cache = m.makeCache()
        for (i, t) in tokens.enumerated() {
            let step = try m.forward([t], cache: cache)
            #expect(maxDiff(step, Array(all[(i * v)..<((i + 1) * v)])) < 1e-4, "position \(i)")
        }
    }

    /// Q8_0 weights multiplied in quantized form give what F32 gives on their dequantized values.
    @Test func q8MatchesDequantizedF32() throws {
        let w = TinyModels.weights(TinyModels.config())
        let q = TinyModels.quantizeAll(w)
        var f = w
        f.layers = q.layers.map { l in
            var l = l
            for kp in [\LayerWeights.wq, \.wk, \.wv, \.wo, \.gate, \.up, \.down] {
                let m = l[keyPath: kp]
                l[keyPath: kp] = .owned(rows: m.rows, cols: m.cols, values: m.toFloats())
            }
            return l
        }
        f.output = .owned(rows: q.output.rows, cols: q.output.cols, values: q.output.toFloats())
        let mq = try LlamaModel(weights: q), mf = try LlamaModel(weights: f)
        // Prefill beyond the small-batch limit (dequantized tiles + SGEMM) against F32.
        let long = Self.tokens + Self.tokens
        #expect(long.count > Linear.rowInvariantLimit)
        #expect(maxDiff(try mq.forward(long, cache: mq.makeCache(), outputs: .all),
                        try mf.forward(long, cache: mf.makeCache(), outputs: .all)) < 1e-4)
        // Decode rounds activations to int8 blocks as llama.cpp does (exact rule: SmallBatchTests):
        // close to F32, not equal: within 5 % of the largest logit on this dim-32 model, whose rows are
        // single blocks (about 3 % seen). A float-activation kernel would be within 1e-4.
        let cq = mq.makeCache(), cf = mf.makeCache()
        for t in Self.tokens {
            let a = try mq.forward([t], cache: cq), b = try mf.forward([t], cache: cf)
            #expect(maxDiff(a, b) < 0.05 * b.map(abs).max()!)
        }
    }

    /// An interleaved-pair model and the same model with q/k rows permuted to half-split order
    /// compute the same function: the RoPE convention and the permutation agree.
    @Test func ropeConventionsAgree() throws {
        let c = TinyModels.config(style: .interleaved)
        let inter = TinyModels.weights(c)
        var half = inter
        half.config.ropeStyle = .halfSplit
        half.layers = inter.layers.map { l in
            var l = l
            l.wq = TinyModels.toHalfSplitRows(l.wq, heads: c.headCount)
            l.wk = TinyModels.toHalfSplitRows(l.wk, heads: c.kvHeadCount)
            return l
        }
        let a = try LlamaModel(weights: inter), b = try LlamaModel(weights: half)
        #expect(maxDiff(try a.forward(Self.tokens, cache: a.makeCache(), outputs: .all),
                        try b.forward(Self.tokens, cache: b.makeCache(), outputs: .all)) < 1e-4)
    }

    @Test func badTokensAndFullContextAreErrors() throws {
        let m = try LlamaModel(weights: TinyModels.weights(TinyModels.config()))
        #expect(throws: ModelError.tokenOutOfRange(64, vocabularySize: 64)) { try m.forward([64], cache: m.makeCache()) }
        let small = m.makeCache(capacity: 4)
        #expect(throws: ModelError.contextOverflow(needed: 5, capacity: 4)) { try m.forward([1, 2, 3, 4, 5], cache: small) }
        #expect(small.count == 0)
        #expect(throws: ModelError.emptyInput) { try m.forward([], cache: small) }
    }

    @Test func mismatchedShapesAreRejected() throws {
        var w = TinyModels.weights(TinyModels.config())
        w.layers[1].wk = .owned(rows: 3, cols: 32, values: .init(repeating: 0, count: 96))
        #expect(throws: ModelFileError.self) { try LlamaModel(weights: w) }
    }
}
