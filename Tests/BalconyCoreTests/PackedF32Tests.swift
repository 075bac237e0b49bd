import Foundation
import Testing
@testable import BalconyCore

/// The lossless packed F32 form decode reads (`PackedF32Matrix`): every weight comes back bit for
/// bit, products equal the plain F32 kernel's bit for bit, and models decode the same with and
/// without it.
@Suite struct PackedF32Tests {
    /// Roughly normal weights like a trained or random layer's (sum of uniforms, scale 0.02).
    static func weights(rows: Int, cols: Int, seed: UInt64) -> [Float] {
        var g = TinyModels.LCG(state: seed)
        return (0..<(rows * cols)).map { _ in (g.next() + g.next() + g.next()) * 0.02 }
    }

    @Test func unpackingGivesBackEveryBit() throws {
        let rows = 400, cols = 96
        var values = Self.weights(rows: rows, cols: cols, seed: 3)
        // Row 1: zeros of both signs and subnormals (exponent field 0, kept in the stream).
        for (i, v) in [Float(0), -0.0, .leastNonzeroMagnitude, Float(bitPattern: 0x8001_1170), Float(bitPattern: 0x0020_A9D2)].enumerated() { values[cols + i] = v }
        // Row 2: values far below the row's largest (exceptions), and a large one (the rest of the
        // row becomes exceptions too).
        for (i, v) in [Float(1e-30), -3e-20, 1e-9, 1000].enumerated() { values[2 * cols + 5 * i] = v }
        // Row 3: infinities and a NaN with a payload; row 4: the extremes; row 5: all zero.
        values[3 * cols] = .infinity; values[3 * cols + 7] = -.infinity
        values[3 * cols + 9] = Float(bitPattern: 0x7FC0_1234)
        values[4 * cols] = .greatestFiniteMagnitude; values[4 * cols + 1] = -.leastNormalMagnitude
        for i in 0..<cols { values[5 * cols + i] = 0 }
        let packed = PackedF32Matrix.pack(values, rows: rows, cols: cols)
        let p = try #require(packed)
        #expect(p.exceptionCount > 0)
        let back = p.unpacked()
        let wrong = (0..<values.count).filter { back[$0].bitPattern != values[$0].bitPattern }
        #expect(wrong.isEmpty, "\(wrong.count) values differ, first at \(wrong.first.map { "\($0): \(back[$0]) vs \(values[$0])" } ?? "")")
    }

    /// Bit for bit the plain F32 products, exceptions included, at every small-batch size (and
    /// past the kernel's 16 activation rows per pass, called directly).
    @Test(arguments: [(64, 32), (300, 96), (129, 768)])
    func productsEqualThePlainKernelBitForBit(shape: (Int, Int)) throws {
        let (rows, cols) = shape
        var values = Self.weights(rows: rows, cols: cols, seed: UInt64(rows))
        // Exceptions in some rows, two of them in one group in one row.
        for r in stride(from: 3, to: rows, by: 17) { values[r * cols + (r % cols)] = 1e-12 }
        values[cols + 1] = -2e-11
        values[cols + 2] = 4e-13
        let plain = WeightMatrix.owned(rows: rows, cols: cols, values: values)
        let packed = plain.withPackedCopy()
        let p = try #require(packed.packed)
        #expect(p.exceptionCount >= rows / 17 + 2)
        #expect(packed.byteCount < plain.byteCount * 15 / 16)
        var g = TinyModels.LCG(state: 8)
        for m in [1, 2, 5, Linear.rowInvariantLimit] {
            let x = g.values(m * cols, scale: 2)
            var yPlain = [Float](repeating: 0, count: m * rows), yPacked = yPlain
            Linear.forward(plain, x: x, tokens: m, y: &yPlain)
            Linear.forward(packed, x: x, tokens: m, y: &yPacked)
            let wrong = (0..<yPlain.count).filter { yPlain[$0].bitPattern != yPacked[$0].bitPattern }
            #expect(wrong.isEmpty, "m \(m): \(wrong.count) results differ, first at \(wrong.first ?? -1)")
        }
        let m = 20
        let x = g.values(m * cols, scale: 1)
        var direct = [Float](repeating: 0, count: m * rows)
        p.gemv(x: x, tokens: m, y: &direct, rows: 0..<rows)
        for t in 0..<m {
            var alone = [Float](repeating: 0, count: rows)
            Array(x[(t * cols)..<((t + 1) * cols)]).withUnsafeBufferPointer {
                Linear.forward(plain, x: $0.baseAddress!, tokens: 1, y: &alone)
            }
            #expect(Array(direct[(t * rows)..<((t + 1) * rows)]) == alone, "activation row \(t) of \(m)")
        }
    }

    /// Both kernels (AVX2 and the portable one non-x86 CPUs run) against a double-precision
    /// product of the original weights, exceptions included.
    @Test func bothKernelsMatchADoublePrecisionProduct() throws {
        let rows = 75, cols = 160
        var values = Self.weights(rows: rows, cols: cols, seed: 12)
        for r in stride(from: 0, to: rows, by: 7) { values[r * cols + 2 * r % cols] = -3e-9 }
        values[5 * cols + 1] = 0
        // A row whose largest value puts nearly all the others below its window: their sum matters.
        values[10 * cols + 3] = 1e4
        let packed = PackedF32Matrix.pack(values, rows: rows, cols: cols)
        let p = try #require(packed)
        var g = TinyModels.LCG(state: 4)
        let m = 3
        let x = g.values(m * cols, scale: 1.5)
        var fast = [Float](repeating: 0, count: m * rows), portable = fast
        p.gemv(x: x, tokens: m, y: &fast, rows: 0..<rows)
        p.gemvPortable(x: x, tokens: m, y: &portable, rows: 0..<rows)
        for t in 0..<m {
            for r in 0..<rows {
                var exact = 0.0, magnitude = 0.0
                for i in 0..<cols {
                    exact += Double(values[r * cols + i]) * Double(x[t * cols + i])
                    magnitude += abs(Double(values[r * cols + i]) * Double(x[t * cols + i]))
                }
                #expect(abs(Double(fast[t * rows + r]) - exact) <= 1e-6 * magnitude, "AVX2 row \(r), activation \(t)")
                #expect(abs(Double(portable[t * rows + r]) - exact) <= 1e-6 * magnitude, "portable row \(r), activation \(t)")
            }
        }
    }

    @Test func matricesThatCannotGainStayPlain() {
        // Rows not a multiple of 32 long.
        #expect(PackedF32Matrix.pack(Self.weights(rows: 4, cols: 40, seed: 1), rows: 4, cols: 40) == nil)
        // Values spread over many binary orders of magnitude: most would be exceptions.
        let spread = (0..<(8 * 64)).map { Float(sign: .plus, exponent: -($0 % 64), significand: 1.5) }
        #expect(PackedF32Matrix.pack(spread, rows: 8, cols: 64) == nil)
        // Q8_0 weights are left as they are.
        let q = TinyModels.quantize(.owned(rows: 4, cols: 64, values: Self.weights(rows: 4, cols: 64, seed: 2)))
        #expect(q.withPackedCopy().packed == nil)
    }

    @Test func policyPacksLargeModelsOrWhenAsked() {
        let w = TinyModels.weights(TinyModels.config(bias: true, tied: true))
        #expect(!w.packs(.auto), "a tiny model fits in cache and stays plain")
        #expect(w.packingF32(.off).packedMatrixCount == 0)
        let on = w.packingF32(.on)
        #expect(on.packedMatrixCount == 2 * 7 + 1)
        #expect(on.bytesPerToken < w.bytesPerToken)
        #expect(on.tokenEmbedding.packed == nil, "embedding rows are read from the plain table")
    }

    /// A whole model decodes to the same logits, bit for bit, with the packed copies (tied and
    /// untied heads, biases).
    @Test(arguments: [false, true])
    func decodeWithPackedWeightsMatchesPlain(tied: Bool) throws {
        let c = TinyModels.config(bias: tied, tied: tied)
        let plain = try LlamaModel(weights: TinyModels.weights(c))
        let packed = try LlamaModel(weights: plain.weights.packingF32(.on))
        let tokens = [1, 5, 9, 2, 33, 17, 4]
        let a = plain.makeCache(), b = packed.makeCache()
        for t in tokens {
            let la = try plain.forward([t], cache: a)
            let lb = try packed.forward([t], cache: b)
            #expect(la == lb, "token \(t)")
        }
    }
}

/// The cache size `--pack-f32 auto` compares a model with, read as Linux describes it.
@Suite struct CacheTopologyTests {
    @Test func lastLevelCacheFromASysfsTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        // An EPYC-like core: L1 data and instruction, L2, and a 256 MiB L3; plus a malformed entry.
        for (i, level, type, size) in [(0, "1", "Data", "32K"), (1, "1", "Instruction", "32K"),
                                       (2, "2", "Unified", "1024K"), (3, "3", "Unified", "262144K"), (4, "x", "Unified", "9G")] {
            let dir = root.appendingPathComponent("index\(i)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for (file, text) in [("level", level), ("type", type), ("size", size + "\n")] {
                try text.write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8)
            }
        }
        #expect(CacheTopology.lastLevelBytes(sysfs: root) == 256 << 20)
        #expect(CacheTopology.lastLevelBytes(sysfs: root.appendingPathComponent("missing")) == nil)
        #expect(CacheTopology.parseSize("512") == 512)
        #expect(CacheTopology.parseSize("2M") == 2 << 20)
        #expect(CacheTopology.parseSize("big") == nil)
        // auto packs above twice that cache, and from 64 MiB where the cache is small or unknown.
        #expect(F32Packing.autoBytes(lastLevelCache: 256 << 20) == 512 << 20)
        #expect(F32Packing.autoBytes(lastLevelCache: 8 << 20) == 64 << 20)
        #expect(F32Packing.autoBytes(lastLevelCache: nil) == 64 << 20)
    }
}
