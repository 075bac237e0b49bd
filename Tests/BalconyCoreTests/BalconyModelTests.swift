import Foundation
import Testing
@testable import BalconyCore

@Suite struct BalconyModelTests {
    let tokens = ModelForwardTests.tokens

    func model(bias: Bool = false) throws -> (LlamaModel, BalconyModel) {
        let w = TinyModels.weights(TinyModels.config(bias: bias))
        let base = try LlamaModel(weights: w)
        return (base, try BalconyModel(base: base, balconies: [.copyInitialized(from: w, exit: 1)]))
    }

    /// The exit logits are the base model's first k layers, then the balcony layer (a copy of the
    /// last layer here), then the exit norm (layer k's input norm) and the shared head — computed
    /// by hand from the base model's own pieces.
    @Test(arguments: [false, true])
    func exitComposesBaseLayersBalconyAndHead(bias: Bool) throws {
        let (base, b) = try model(bias: bias)
        let c = base.config
        let exitLogits = try b.forward(tokens, cache: b.makeCache(), exit: .exit(1), outputs: .all)
        // By hand: layers 0..<1, then the last layer's weights again at depth 1, exit norm = layer 1's input norm.
        let n = tokens.count
        var x = [Float](repeating: 0, count: n * c.dim)
        let cache = base.makeCache()
        x.withUnsafeMutableBufferPointer { xp in
            base.embed(tokens, into: xp.baseAddress!)
            base.runLayers(0..<1, x: xp.baseAddress!, tokens: n, start: 0, cache: cache)
            let extra = KVCache(config: c, capacity: c.contextLength, layerCount: 1)
            extra.scratch.ensure(tokens: n, config: c, context: n)
            DecoderLayer.forward(base.weights.layers[c.layerCount - 1], x: xp.baseAddress!, tokens: n, start: 0,
                                 cache: extra.layers[0], rope: base.rope, config: c, scratch: extra.scratch)
        }
        var logits = [Float](repeating: 0, count: n * c.vocabSize)
        base.head(x, rows: n, norm: base.weights.layers[1].attentionNorm, logits: &logits)
        #expect(zip(logits, exitLogits).map { abs($0 - $1) }.max()! < 1e-5)
    }

    @Test func fullExitIsTheBaseModel() throws {
        let (base, b) = try model()
        let a = try base.forward(tokens, cache: base.makeCache(), outputs: .all)
        let f = try b.forward(tokens, cache: b.makeCache(), exit: .full, outputs: .all)
        #expect(a == f)
    }

    @Test func exitDecodeMatchesPrefill() throws {
        let (_, b) = try model()
        let all = try b.forward(tokens, cache: b.makeCache(), exit: .exit(1), outputs: .all)
        let cache = b.makeCache()
        let v = b.config.vocabSize
        for (i, t) in tokens.enumerated() {
            let step = try b.forward([t], cache: cache, exit: .exit(1))
            #expect(zip(step, all[(i * v)..<((i + 1) * v)]).map { abs($0 - $1) }.max()! < 1e-4)
        }
    }

    @Test func badExitsAreClearErrors() throws {
        let (base, b) = try model()
        #expect(throws: BalconyError.exitOutOfRange(2, layers: 2)) { try b.forward([1], cache: b.makeCache(), exit: .exit(2)) }
        #expect(throws: BalconyError.exitOutOfRange(0, layers: 2)) { try b.validate(.exit(0)) }
        var far = try BalconyParameters.copyInitialized(from: base.weights, exit: 1)
        far.exit = 5
        #expect(throws: BalconyError.exitOutOfRange(5, layers: 2)) { try BalconyModel(base: base, balconies: [far]) }
        let one = try BalconyParameters.copyInitialized(from: base.weights, exit: 1)
        #expect(throws: BalconyError.duplicateExit(1)) { try BalconyModel(base: base, balconies: [one, one]) }
        #expect(throws: BalconyError.invalidExit("deep")) { try ExitChoice(parsing: "deep") }
        #expect(try ExitChoice(parsing: "full") == .full)
    }

    @Test func teacherForwardCapturesExitStatesAndHeadInput() throws {
        let (base, _) = try model()
        let c = base.config
        let seqs = [Array(tokens[0..<6]), Array(tokens[6..<12])]
        let out = try TeacherForward(model: base, exits: [1]).run(seqs)
        #expect(out.rows == 12)
        // The head applied to finalNormed must give the full model's logits.
        for (s, seq) in seqs.enumerated() {
            let logits = try base.forward(seq, cache: base.makeCache(), outputs: .all)
            var mine = [Float](repeating: 0, count: 6 * c.vocabSize)
            out.finalNormed.withUnsafeBufferPointer { f in
                Linear.forward(base.weights.output, x: f.baseAddress! + s * 6 * c.dim, tokens: 6, y: &mine)
            }
            #expect(zip(mine, logits).map { abs($0 - $1) }.max()! < 1e-5)
        }
    }
}
