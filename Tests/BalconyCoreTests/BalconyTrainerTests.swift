import Foundation
import Testing
@testable import BalconyCore

/// The training loop end to end on a tiny random model.
@Suite struct BalconyTrainerTests {
    static func setup(steps: Int, optimizer: OptimizerKind = .adamw, accum: Int = 1) throws -> (LlamaModel, TrainingConfiguration, TrainingData) {
        let w = TinyModels.weights(TinyModels.config(layers: 4))
        let model = try LlamaModel(weights: w)
        var g = TinyModels.LCG(state: 11)
        let docs = (0..<40).map { _ in (0..<30).map { _ in Int((g.next() + 1) * 31) % 64 } }
        let data = try TrainingData(documents: docs, separator: .bos(1), sequenceLength: 16, holdoutFraction: 0.1, seed: 3)
        let c = TrainingConfiguration(exits: [1, 3], optimizer: optimizer, learningRate: 1e-2, momentum: optimizer == .sgd ? 0.9 : 0,
                                      warmupFraction: 0.1, steps: steps, batchSize: 4, sequenceLength: 16, gradientAccumulation: accum, seed: 3)
        return (model, c, data)
    }

    static func trainer(_ m: LlamaModel, _ c: TrainingConfiguration, _ d: TrainingData) throws -> BalconyTrainer {
        try BalconyTrainer(model: m, configuration: c, data: d,
                           balconies: c.exits.map { try BalconyParameters.copyInitialized(from: m.weights, exit: $0) })
    }

    @Test func trainingLowersEveryExitsKL() throws {
        let (m, c, d) = try Self.setup(steps: 25)
        let t = try Self.trainer(m, c, d)
        let before = try t.evaluate(d.holdout).klDivergence
        for _ in 0..<25 { _ = try t.trainStep() }
        let after = try t.evaluate(d.holdout).klDivergence
        for (b, a) in zip(before, after) { #expect(a < b * 0.8, "KL \(b) -> \(a)") }
    }

    /// N steps, a checkpoint written and read back, N more steps == 2N steps in one run, bit for bit.
    @Test(arguments: [(OptimizerKind.adamw, 1), (.sgd, 2)])
    func resumeIsExact(optimizer: OptimizerKind, accum: Int) throws {
        let (m, c, d) = try Self.setup(steps: 8, optimizer: optimizer, accum: accum)
        let straight = try Self.trainer(m, c, d)
        for _ in 0..<8 { _ = try straight.trainStep() }

        let first = try Self.trainer(m, c, d)
        for _ in 0..<4 { _ = try first.trainStep() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("checkpoint.safetensors")
        try TrainingStateFile.write(first.checkpoint(initialization: .copy, modelName: nil), config: m.config, to: url)
        let fingerprint = ModelFingerprint.compute(m.weights)
        let ckpt = try TrainingStateFile.read(from: url, config: m.config, fingerprint: fingerprint, resuming: c, dataDigest: d.digest)
        let resumed = try BalconyTrainer(model: m, data: d, resuming: ckpt)
        #expect(resumed.step == 4)
        for _ in 0..<4 { _ = try resumed.trainStep() }
        #expect(resumed.balconies == straight.balconies)
        #expect(resumed.tokensSeen == straight.tokensSeen)
    }

    @Test func badSettingsAreRefused() throws {
        let (m, c, d) = try Self.setup(steps: 4)
        var far = c
        far.exits = [1, 4]
        #expect(throws: BalconyError.exitOutOfRange(4, layers: 4)) { try Self.trainer(m, far, d) }
        #expect(throws: BalconyError.exitOutOfRange(4, layers: 4)) { try BalconyTrainer(model: m, configuration: far, data: d, balconies: []) }
        var long = c
        long.sequenceLength = 1000
        #expect(throws: TrainingError.self) { try Self.trainer(m, long, d) }
        #expect(throws: TrainingDataError.self) { try TrainingData(documents: [[5, 6]], separator: .bos(1), sequenceLength: 16, seed: 1) }
    }

    @Test func stepReportsHaveTheLoggedFields() throws {
        let (m, c, d) = try Self.setup(steps: 2)
        let t = try Self.trainer(m, c, d)
        let r = try t.trainStep()
        #expect(r.step == 1 && r.tokens == 4 * 16)
        #expect(r.kl.keys.sorted() == ["1", "3"])
        let json = String(decoding: try JSONEncoder().encode(r), as: UTF8.self)
        for key in ["\"step\"", "\"tokens\"", "\"lr\"", "\"loss\"", "\"kl\"", "\"tokens_per_s\""] { #expect(json.contains(key)) }
    }
}
