import Foundation
import Testing
import CKernels
@testable import BalconyCore

/// F16 and BF16 matrices kept in 16 bits: products bit for bit those of the same weights widened
/// to F32 at load (what Balcony did before), prefill within SGEMM's rounding, and the model
/// fingerprint unchanged, so balcony files trained on a widened model still load.
@Suite struct HalfWeightTests {
    /// A `[rows, cols]` matrix of `dtype` (F16 or BF16) from a file's bytes, and the same values widened to F32.
    static func matrices(rows: Int, cols: Int, dtype: FileDType, seed: UInt64) throws -> (half: WeightMatrix, widened: WeightMatrix) {
        var g = TinyModels.LCG(state: seed)
        let values = g.values(rows * cols, scale: 0.5)
        let bits: [UInt16] = values.map {
            dtype == .f16 ? HalfPrecision.f32ToF16($0) : UInt16(truncatingIfNeeded: $0.bitPattern >> 16)
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bits.count * 2, alignment: 64)
        bits.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let half = try WeightMatrix.fromFile(bytes: UnsafeRawBufferPointer(start: storage, count: bits.count * 2), dtype: dtype,
                                             rows: rows, cols: cols, storage: WeightStorage(owning: storage), source: "test", name: "w")
        let widened = bits.map { dtype == .f16 ? HalfPrecision.f16ToF32($0) : HalfPrecision.bf16ToF32($0) }
        return (half, .owned(rows: rows, cols: cols, values: widened))
    }

    @Test(arguments: [FileDType.f16, .bf16])
    func smallBatchesEqualTheWidenedF32BitForBit(dtype: FileDType) throws {
        // 72 and 40 columns exercise the kernels' 8-wide and one-at-a-time tails.
        for (rows, cols) in [(50, 64), (33, 72), (20, 40), (300, 256)] {
            let (half, widened) = try Self.matrices(rows: rows, cols: cols, dtype: dtype, seed: UInt64(rows + cols))
            #expect(half.type == (dtype == .f16 ? .f16 : .bf16))
            #expect(half.byteCount * 2 == widened.byteCount)
            #expect(half.toFloats().map(\.bitPattern) == widened.toFloats().map(\.bitPattern), "rows widen exactly")
            var g = TinyModels.LCG(state: 3)
            for m in [1, 3, Linear.rowInvariantLimit] {
                let x = g.values(m * cols, scale: 1)
                var a = [Float](repeating: 0, count: m * rows), b = a
                Linear.forward(half, x: x, tokens: m, y: &a)
                Linear.forward(widened, x: x, tokens: m, y: &b)
                let differ = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differ == 0, "\(dtype) \(rows)x\(cols), m \(m): \(differ) results differ")
            }
            // Prefill: widened tiles through SGEMM, against SGEMM on the F32 matrix.
            let m = 40
            let x = g.values(m * cols, scale: 1)
            var a = [Float](repeating: 0, count: m * rows), b = a
            Linear.forward(half, x: x, tokens: m, y: &a)
            Linear.forward(widened, x: x, tokens: m, y: &b)
            let worst = zip(a, b).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-4, "\(dtype) prefill \(rows)x\(cols): \(worst)")
        }
    }

    /// The portable kernel (what non-x86 CPUs run) against a double-precision product.
    @Test(arguments: [FileDType.f16, .bf16])
    func portableKernelMatchesADoublePrecisionProduct(dtype: FileDType) throws {
        let (rows, cols) = (30, 72)
        let (half, widened) = try Self.matrices(rows: rows, cols: cols, dtype: dtype, seed: 5)
        let w = widened.toFloats()
        var g = TinyModels.LCG(state: 6)
        let x = g.values(cols, scale: 1)
        var y = [Float](repeating: 0, count: rows)
        balcony_half_gemv_portable(half.data.assumingMemoryBound(to: UInt16.self), dtype == .bf16 ? 1 : 0, cols, x, &y, 0, rows)
        for r in 0..<rows {
            let exact = (0..<cols).reduce(0.0) { $0 + Double(w[r * cols + $1]) * Double(x[$1]) }
            let magnitude = (0..<cols).reduce(0.0) { $0 + abs(Double(w[r * cols + $1]) * Double(x[$1])) }
            #expect(abs(Double(y[r]) - exact) <= 1e-6 * magnitude, "\(dtype) row \(r)")
        }
    }

    /// The BF16 fixture made by transformers: a model kept in BF16 has the fingerprint of the same
    /// model widened to F32, and decodes to the same logits bit for bit.
    @Test func bf16ModelMatchesItsWidenedCopy() throws {
        let dir = ModelFixtures.model("llama-gqa").appendingPathComponent("hf-bf16")
        let half = try HuggingFaceModelLoader.load(directory: dir)
        func widen(_ m: WeightMatrix) -> WeightMatrix { .owned(rows: m.rows, cols: m.cols, values: m.toFloats()) }
        var wide = half
        wide.tokenEmbedding = widen(half.tokenEmbedding)
        wide.output = widen(half.output)
        wide.layers = half.layers.map { $0.mapMatrices(widen) }
        #expect(half.layers[0].wq.type == .bf16 && wide.layers[0].wq.type == .f32)
        #expect(ModelFingerprint.compute(half) == ModelFingerprint.compute(wide))
        let a = try LlamaModel(weights: half), b = try LlamaModel(weights: wide)
        let ca = a.makeCache(), cb = b.makeCache()
        for t in [1, 7, 42, 3, 99] {
            #expect(try a.forward([t], cache: ca) == b.forward([t], cache: cb), "token \(t)")
        }
    }
}
