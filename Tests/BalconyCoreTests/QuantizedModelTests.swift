import Foundation
import Testing
@testable import BalconyCore

/// Whole models in every quantized type, made by llama.cpp's own quantizer, against llama.cpp's
/// log-probabilities (scripts/make_quant_model_fixtures.py). Two paths, as llama.cpp has them:
/// prefill multiplies float activations with the dequantized weights (against llama.cpp on the file
/// requantized to F32), decode quantizes the activations to 8-bit blocks (against llama.cpp on the
/// quantized file, one token at a time).
@Suite struct QuantizedModelTests {
    struct Expected: Decodable {
        struct File: Decodable {
            let file: String
            let tensor_types: [String]
            let quantized_activations: [Double]
            let float_activations: [Double]
            let mean_abs_gap_between_paths: Double
            let dequantized: Dequantized
        }
        struct Dequantized: Decodable {
            let tensor: String
            let type: String
            let rows: Int
            let file: String
        }
        let tokens: [Int]
        let files: [String: File]
    }

    static let directory = ModelFixtures.model("quantized")

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
    }

    static let names = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS", "Q4_K_M"]

    static func meanAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.reduce(0, +) / Double(a.count)
    }

    /// Blocks made by llama.cpp's own quantizer dequantize bit for bit as the gguf package reads them.
    @Test(arguments: names)
    func quantizerMadeBlocksDequantizeLikeTheGGUFPackage(name: String) throws {
        let f = try #require(try Self.expected().files[name])
        let loaded = try ModelLoader.load(path: Self.directory.appendingPathComponent(f.file).path)
        #expect(f.dequantized.tensor == "blk.0.ffn_down.weight")
        let m = loaded.weights.layers[0].down
        #expect(m.type.rawValue == f.dequantized.type)
        let data = try Data(contentsOf: Self.directory.appendingPathComponent(f.dequantized.file))
        let expected = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(expected.count == f.dequantized.rows * m.cols)
        var ours = [Float](repeating: .nan, count: f.dequantized.rows * m.cols)
        m.widenRows(0, f.dequantized.rows, into: &ours)
        #expect(ours.map(\.bitPattern) == expected.map(\.bitPattern), "\(name): \(f.dequantized.type) rows")
    }

    /// log softmax(logits)[token], in double precision.
    static func logProbability(of token: Int, logits: [Float]) -> Double {
        let m = Double(logits.max()!)
        let sum = logits.reduce(0.0) { $0 + exp(Double($1) - m) }
        return Double(logits[token]) - m - log(sum)
    }

    @Test(arguments: names)
    func prefillMatchesLlamaCppOnTheDequantizedWeights(name: String) throws {
        let e = try Self.expected()
        let f = try #require(e.files[name])
        let loaded = try ModelLoader.load(path: Self.directory.appendingPathComponent(f.file).path)
        // The file's F32 tensors are the norms; the matrices are the quantized types.
        #expect(loaded.weights.weightTypes == Set(f.tensor_types).subtracting(["F32"]), "\(name): types as the gguf package reads them")
        let model = try LlamaModel(weights: loaded.weights, threads: 2)
        #expect(e.tokens.count > Linear.rowInvariantLimit, "the whole text is one prefill, through float activations")
        let lp = try model.tokenLogProbabilities(tokens: e.tokens).map(Double.init)
        let d = Self.meanAbsDifference(lp, f.float_activations)
        #expect(d <= 1e-3, "\(name): prefill \(d) nats from llama.cpp's F32 requantization (paths are \(f.mean_abs_gap_between_paths) apart)")
    }

    @Test(arguments: names)
    func decodeMatchesLlamaCppOnTheQuantizedFile(name: String) throws {
        let e = try Self.expected()
        let f = try #require(e.files[name])
        let loaded = try ModelLoader.load(path: Self.directory.appendingPathComponent(f.file).path)
        let model = try LlamaModel(weights: loaded.weights, threads: 2)
        let cache = model.makeCache(capacity: e.tokens.count)
        var lp: [Double] = []
        for (i, t) in e.tokens.enumerated().dropLast() {
            lp.append(Self.logProbability(of: e.tokens[i + 1], logits: try model.forward([t], cache: cache)))
        }
        let d = Self.meanAbsDifference(lp, f.quantized_activations)
        #expect(d <= 0.01, "\(name): decode \(d) nats from llama.cpp's own decode (paths are \(f.mean_abs_gap_between_paths) apart)")
    }
}
