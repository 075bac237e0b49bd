import Foundation
import Testing
@testable import BalconyCore

/// Balconies run in GGML block types (`--balcony-type`): the quantizer against gguf-py's
/// (fixtures from scripts/make_requantize_fixtures.py), and quantized balconies in a model.
@Suite struct QuantizedBalconyTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/quants/requantize")

    struct Index: Decodable {
        let rows: Int
        let cols: Int
        let types: [String]
    }

    static func source() throws -> (Index, [Float]) {
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: directory.appendingPathComponent("index.json")))
        let data = try Data(contentsOf: directory.appendingPathComponent("source.f32"))
        return (index, data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
    }

    @Test(arguments: BalconyWeightType.quantizable)
    func quantizedBlocksAreBitIdenticalToTheGGUFPackage(type: QuantizedType) throws {
        let (index, values) = try Self.source()
        #expect(index.types.contains(type.rawValue))
        let expected = [UInt8](try Data(contentsOf: Self.directory.appendingPathComponent("\(type.rawValue).bin")))
        let m = try #require(WeightMatrix.owned(rows: index.rows, cols: index.cols, values: values).quantized(to: type))
        #expect(m.type == WeightType(type) && m.rows == index.rows && m.cols == index.cols)
        let got = [UInt8](UnsafeRawBufferPointer(start: m.data, count: m.byteCount))
        #expect(got.count == expected.count)
        let firstDiff = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDiff == nil, "\(type): first differing byte at \(firstDiff ?? -1)")
    }

    @Test func typesTheQuantizerCannotMakeAreRefused() throws {
        let m = WeightMatrix.owned(rows: 2, cols: 256, values: .init(repeating: 0.5, count: 512))
        #expect(m.quantized(to: .q4_K) == nil)
        #expect(WeightMatrix.owned(rows: 2, cols: 48, values: .init(repeating: 1, count: 96)).quantized(to: .q8_0) == nil)
        for bad in ["q4_K", "Q6_K", "int8", "", "f16"] {
            #expect(throws: BalconyWeightTypeError.unsupported(bad)) { try BalconyWeightType(parsing: bad) }
        }
        #expect(try BalconyWeightType(parsing: "Q8_0") == .quantized(.q8_0))
        #expect(try BalconyWeightType(parsing: "q4_1") == .quantized(.q4_1))
        #expect(try BalconyWeightType(parsing: "BASE") == .base)
        let message = BalconyWeightTypeError.unsupported("q4_K").errorDescription ?? ""
        #expect(message.contains("q4_K") && message.contains("Q8_0") && message.contains("Q4_0"))
    }

    static func models(_ type: BalconyWeightType, base: ModelWeights? = nil) throws -> (f32: BalconyModel, q: BalconyModel) {
        let c = TinyModels.config(layers: 3)
        let w = base ?? TinyModels.weights(c)
        let model = try LlamaModel(weights: w)
        let balconies = [1, 2].map { BalconyParameters.randomInitialized(config: c, exit: $0, seed: UInt64(40 + $0)) }
            .map { b -> BalconyParameters in
                // Random init is N(0, 0.02); larger weights make the exit's logits depend on them visibly.
                var b = b
                b.forEachTensor { name, t in if name.contains("proj") { t = t.map { $0 * 20 } } }
                return b
            }
        return (try BalconyModel(base: model, balconies: balconies), try BalconyModel(base: model, balconies: balconies, weightType: type))
    }

    static func logits(_ m: BalconyModel, exit: Int) throws -> [Float] {
        try m.forward([3, 14, 15, 9, 26, 5, 35, 8], cache: m.makeCache(), exit: .exit(exit), outputs: .all)
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max()! / a.map(abs).max()!
    }

    /// A quantized balcony computes what its dequantized weights would in F32, up to the 8-bit
    /// activation blocks that the integer products take (llama.cpp's scheme): a small relative error,
    /// whatever the weight type. Against the original F32 weights the error grows as bits shrink.
    @Test func quantizedBalconiesComputeWhatTheirDequantizedWeightsWould() throws {
        let c = TinyModels.config(layers: 3)
        var errorsToF32: [QuantizedType: Float] = [:]
        for type in BalconyWeightType.quantizable {
            let (f32, q) = try Self.models(.quantized(type))
            #expect(q.weightType == .quantized(type) && q.matricesKeptF32 == 0)
            for k in [1, 2] {
                for m in q.layers[k]!.matrices { #expect(m.type == WeightType(type)) }
                // The same balcony with its weights replaced by the quantized blocks' values, in F32.
                var dequantized = BalconyParameters.randomInitialized(config: c, exit: k, seed: 0)
                let l = q.layers[k]!
                dequantized.attentionNorm = l.attentionNorm; dequantized.ffnNorm = l.ffnNorm; dequantized.norm = q.norms[k]!
                dequantized.wq = l.wq.toFloats(); dequantized.wk = l.wk.toFloats(); dequantized.wv = l.wv.toFloats()
                dequantized.wo = l.wo.toFloats(); dequantized.gate = l.gate.toFloats(); dequantized.up = l.up.toFloats()
                dequantized.down = l.down.toFloats()
                let reference = try BalconyModel(base: f32.base, balconies: [dequantized])
                let a = try Self.logits(reference, exit: k), b = try Self.logits(q, exit: k)
                // Measured 0.014 to 0.026 for every type (the activations' 8-bit rounding, amplified by
                // this balcony's weights, 20x the usual init); the weight rounding alone gives 0.02 (Q8_0)
                // to 0.6 (Q4_1) against the original F32 logits.
                #expect(Self.relativeError(a, b) < 0.04, "\(type) exit \(k): \(Self.relativeError(a, b))")
                errorsToF32[type, default: 0] = max(errorsToF32[type, default: 0], Self.relativeError(try Self.logits(f32, exit: k), b))
            }
            // The full model and the base layers are untouched.
            #expect(try f32.forward([1, 2, 3], cache: f32.makeCache(), exit: .full) == (try q.forward([1, 2, 3], cache: q.makeCache(), exit: .full)))
        }
        #expect(errorsToF32[.q8_0]! > 0 && errorsToF32[.q8_0]! < errorsToF32[.q5_1]!, "\(errorsToF32)")
        #expect(errorsToF32[.q5_0]! < errorsToF32[.q4_0]!, "\(errorsToF32)")
    }

    @Test func exitCostCountsTheQuantizedBytes() throws {
        let (f32, q) = try Self.models(.quantized(.q8_0))
        let a = ExitCostModel(f32).costs[.exit(1)]!, b = ExitCostModel(q).costs[.exit(1)]!
        let c = TinyModels.config(layers: 3)
        let matrixValues = 2 * c.qDim * c.dim + 2 * c.kvDim * c.dim + 3 * c.hiddenDim * c.dim
        // Q8_0 stores 32 values in 34 bytes: the balcony's matrices shrink from 4 to 34/32 bytes a value.
        #expect(a.bytesPerToken - b.bytesPerToken == matrixValues * 4 - matrixValues / 32 * 34)
        #expect(b.idealSpeedup > a.idealSpeedup)
    }

    @Test func baseResolvesToTheBaseModelsOwnBlockType() throws {
        let c = TinyModels.config(layers: 3)
        let quantizedBase = TinyModels.quantizeAll(TinyModels.weights(c))
        #expect(BalconyWeightType.base.resolved(for: quantizedBase) == .quantized(.q8_0))
        // An F32 base has no block type of its own: Q8_0, the closest to F32.
        #expect(BalconyWeightType.base.resolved(for: TinyModels.weights(c)) == .quantized(.q8_0))
        let (_, q) = try Self.models(.base, base: quantizedBase)
        #expect(q.weightType == .quantized(.q8_0))
    }

    @Test func rowsThatAreNotWholeBlocksStayF32() throws {
        // hidden 48: gate/up rows are 32 wide (fine), down's rows are 48 wide (not whole blocks).
        var c = TinyModels.config(layers: 3)
        c.hiddenDim = 48
        let model = try LlamaModel(weights: TinyModels.weights(c))
        let q = try BalconyModel(base: model, balconies: [BalconyParameters.randomInitialized(config: c, exit: 1, seed: 1)],
                                 weightType: .quantized(.q4_0))
        #expect(q.matricesKeptF32 == 1)
        #expect(q.layers[1]!.down.type == .f32 && q.layers[1]!.gate.type == .q4_0)
        _ = try q.forward([1, 2, 3], cache: q.makeCache(), exit: .exit(1))
    }
}
