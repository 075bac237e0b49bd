import Foundation
import Testing
@testable import BalconyCore

/// Products with up to `Linear.rowInvariantLimit` rows: each row bit-identical to a one-row call
/// (batch invariance), and Q8_0 computed as llama.cpp does (activations quantized to Q8_0 blocks,
/// exact int8 dot products), checked against a direct double-precision formula.
@Suite struct SmallBatchTests {
    static func matrices(rows: Int, cols: Int) -> [WeightMatrix] {
        var g = TinyModels.LCG(state: 11)
        let f = WeightMatrix.owned(rows: rows, cols: cols, values: g.values(rows * cols, scale: 1))
        return [f, TinyModels.quantize(f)]
    }

    @Test(arguments: [(70, 64), (131, 96), (300, 256)])
    func everyRowEqualsItsOneRowCall(shape: (Int, Int)) {
        let (rows, cols) = shape
        var g = TinyModels.LCG(state: 5)
        for w in Self.matrices(rows: rows, cols: cols) {
            for m in [2, 3, 8, Linear.rowInvariantLimit] {
                let x = g.values(m * cols, scale: 2)
                var batch = [Float](repeating: 0, count: m * rows)
                Linear.forward(w, x: x, tokens: m, y: &batch)
                for i in 0..<m {
                    var alone = [Float](repeating: 0, count: rows)
                    Array(x[(i * cols)..<((i + 1) * cols)]).withUnsafeBufferPointer {
                        Linear.forward(w, x: $0.baseAddress!, tokens: 1, y: &alone)
                    }
                    #expect(Array(batch[(i * rows)..<((i + 1) * rows)]) == alone, "type \(w.type), m \(m), row \(i)")
                }
            }
        }
    }

    /// Matrices sharing their input (q, k, v) in one pass give what separate calls give, bit for bit.
    @Test func groupedProductsEqualSeparateOnes() {
        var g = TinyModels.LCG(state: 21)
        let cols = 96
        let f32 = [70, 33, 130].map { WeightMatrix.owned(rows: $0, cols: cols, values: g.values($0 * cols, scale: 1)) }
        for ws in [f32, f32.map(TinyModels.quantize)] {
            for m in [1, 5] {
                let x = g.values(m * cols, scale: 1)
                let ptrs = ws.map { UnsafeMutablePointer<Float>.allocate(capacity: m * $0.rows) }
                defer { ptrs.forEach { $0.deallocate() } }
                Linear.forward(ws, x: x, tokens: m, y: ptrs)
                for (j, w) in ws.enumerated() {
                    var alone = [Float](repeating: 0, count: m * w.rows)
                    Linear.forward(w, x: x, tokens: m, y: &alone)
                    #expect(Array(UnsafeBufferPointer(start: ptrs[j], count: m * w.rows)) == alone, "type \(w.type), m \(m), matrix \(j)")
                }
            }
        }
    }

    /// The Q8_0 x Q8_0 rule, written out: per 32-block, d_x = max|x| / 127, q_x = round(x / d_x),
    /// y = sum over blocks of d_w d_x (q_w . q_x).
    @Test func q8ActivationProductIsTheGGMLRule() {
        let rows = 37, cols = 128
        var g = TinyModels.LCG(state: 9)
        let w = TinyModels.quantize(.owned(rows: rows, cols: cols, values: g.values(rows * cols, scale: 1)))
        let x = g.values(cols, scale: 3)
        var y = [Float](repeating: 0, count: rows)
        Linear.forward(w, x: x, tokens: 1, y: &y)
        let wf = w.toFloats()
        for r in 0..<rows {
            var ref = 0.0, mag = 0.0
            for b in 0..<(cols / 32) {
                let xb = x[(b * 32)..<(b * 32 + 32)]
                let dx = Double(xb.map { abs($0) }.max()! / 127)
                let wb = wf[(r * cols + b * 32)..<(r * cols + b * 32 + 32)]
                let dw = Double(wb.map { abs($0) }.max()!) / 127
                var dot = 0.0
                for (wv, xv) in zip(wb, xb) {
                    dot += (Double(wv) / dw).rounded() * (Double(xv) / dx).rounded()
                    mag += abs(Double(wv) * Double(xv))
                }
                ref += dw * dx * dot
            }
            // The weight scale is stored as fp16, so allow its relative rounding (2^-11) on the magnitude.
            #expect(abs(Double(y[r]) - ref) <= 1e-3 * mag + 1e-5, "row \(r): \(y[r]) vs \(ref)")
        }
    }
}
