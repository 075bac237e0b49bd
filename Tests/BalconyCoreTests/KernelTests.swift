import Foundation
import Testing
@testable import BalconyCore

/// Kernels against straightforward double-precision formulas.
@Suite struct KernelTests {
    var g = TinyModels.LCG(state: 3)

    @Test mutating func rmsNorm() {
        let n = 37
        let x = g.values(2 * n, scale: 2), w = g.values(n, scale: 1)
        var out = [Float](repeating: 0, count: 2 * n)
        Kernels.rmsNorm(x, weight: w, out: &out, rows: 2, n: n, eps: 1e-5)
        for r in 0..<2 {
            let row = x[(r * n)..<((r + 1) * n)].map(Double.init)
            let inv = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(n) + 1e-5).squareRoot()
            for i in 0..<n { #expect(abs(Double(out[r * n + i]) - row[i] * inv * Double(w[i])) < 1e-5) }
        }
    }

    @Test mutating func softmaxAndLogSoftmax() {
        var x = g.values(100, scale: 30)
        let ref = x.map(Double.init)
        let m = ref.max()!
        let z = ref.map { exp($0 - m) }.reduce(0, +)
        var lsm = [Float](repeating: 0, count: 100)
        Kernels.logSoftmax(x, 100, out: &lsm)
        Kernels.softmax(&x, 100)
        for i in 0..<100 {
            #expect(abs(Double(x[i]) - exp(ref[i] - m) / z) < 1e-6)
            #expect(abs(Double(lsm[i]) - (ref[i] - m - log(z))) < 1e-4)
        }
    }

    @Test mutating func gemvMatchesNaive() {
        for (rows, cols) in [(5, 7), (64, 96), (130, 33)] {
            let w = g.values(rows * cols, scale: 1), x = g.values(cols, scale: 1)
            let m = WeightMatrix.owned(rows: rows, cols: cols, values: w)
            var y = [Float](repeating: 0, count: rows)
            Linear.forward(m, x: x, tokens: 1, y: &y)
            for r in 0..<rows {
                let ref = (0..<cols).map { Double(w[r * cols + $0]) * Double(x[$0]) }.reduce(0, +)
                #expect(abs(Double(y[r]) - ref) < 1e-4)
            }
        }
    }

    /// LLaMA-3 scaling leaves high frequencies alone, divides low ones by `factor`, and blends between.
    @Test func llama3RopeScaling() {
        var c = TinyModels.config()
        c.headDim = 128
        c.ropeTheta = 500000
        let plain = c.ropeInverseFrequencies()
        c.ropeScaling = RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)
        let scaled = c.ropeInverseFrequencies()
        #expect(scaled[0] == plain[0])
        #expect(abs(scaled[63] - plain[63] / 8) < 1e-12)
        let mid = (0..<64).filter { scaled[$0] != plain[$0] && abs(scaled[$0] - plain[$0] / 8) > 1e-12 }
        #expect(!mid.isEmpty)
    }

    @Test func streamingDecoderHoldsBackPartialCharacters() {
        let bytes: [UInt8] = Array("héllo €".utf8)
        #expect(StreamingDecoder.completePrefixLength(Array(bytes[0..<2])) == 1)
        #expect(StreamingDecoder.completePrefixLength(Array(bytes[0..<3])) == 3)
        #expect(StreamingDecoder.completePrefixLength(Array(bytes.dropLast())) == bytes.count - 3)
        #expect(StreamingDecoder.completePrefixLength(bytes) == bytes.count)
    }
}
