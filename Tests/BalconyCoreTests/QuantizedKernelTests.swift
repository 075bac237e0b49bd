import Foundation
import Testing
import CKernels
@testable import BalconyCore

/// GGML's block types against the `gguf` package's reference dequantization (fixtures made by
/// scripts/make_quant_fixtures.py), and their products against double-precision sums.
@Suite struct QuantizedKernelTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/quants")

    struct Fixture {
        let name: String
        let rows: Int
        let cols: Int
        let raw: [UInt8]
        let expected: [Float]
    }

    struct Index: Decodable {
        struct Entry: Decodable {
            let type_id: Int
            let block_values: Int
            let block_bytes: Int
            let files: [String]
        }
        let rows: Int
        let cols: Int
        let types: [String: Entry]
    }

    static func index() throws -> Index {
        try JSONDecoder().decode(Index.self, from: Data(contentsOf: directory.appendingPathComponent("index.json")))
    }

    static func fixtures(_ type: QuantizedType) throws -> [Fixture] {
        let index = try index()
        guard let entry = index.types[type.rawValue] else { throw FixtureMissing(type: type.rawValue) }
        return try entry.files.map { name in
            let raw = [UInt8](try Data(contentsOf: directory.appendingPathComponent(name + ".bin")))
            let floats = try Data(contentsOf: directory.appendingPathComponent(name + ".f32"))
            let expected = floats.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return Fixture(name: name, rows: index.rows, cols: index.cols, raw: raw, expected: expected)
        }
    }

    struct FixtureMissing: Error { let type: String }

    /// The matrix of `rows` rows whose row r is fixture row r % fixture.rows (so that awkward row
    /// counts can be built from the reference rows), and its reference values.
    static func matrix(_ f: Fixture, type: QuantizedType, rows: Int) throws -> (WeightMatrix, [Float]) {
        let rowBytes = type.rowBytes(cols: f.cols)
        var bytes = [UInt8](), values = [Float]()
        for r in 0..<rows {
            let src = r % f.rows
            bytes += f.raw[src * rowBytes ..< (src + 1) * rowBytes]
            values += f.expected[src * f.cols ..< (src + 1) * f.cols]
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let m = try WeightMatrix.fromFile(bytes: UnsafeRawBufferPointer(start: storage, count: bytes.count), dtype: WeightType(type),
                                          rows: rows, cols: f.cols, storage: WeightStorage(owning: storage), source: "test", name: f.name)
        return (m, values)
    }

    @Test func blockGeometryMatchesTheGGUFPackage() throws {
        let index = try Self.index()
        #expect(Set(index.types.keys) == Set(QuantizedType.allCases.map(\.rawValue)))
        for t in QuantizedType.allCases {
            let e = try #require(index.types[t.rawValue])
            #expect(Int(t.ggmlId) == e.type_id && t.blockValues == e.block_values && t.blockBytes == e.block_bytes, "\(t)")
        }
    }

    @Test(arguments: QuantizedType.allCases)
    func dequantizationIsBitIdenticalToTheGGUFPackage(type: QuantizedType) throws {
        for f in try Self.fixtures(type) {
            for portable in [false, true] {
                var out = [Float](repeating: .nan, count: f.rows * f.cols)
                f.raw.withUnsafeBytes { w in
                    out.withUnsafeMutableBufferPointer { o in
                        if portable {
                            balcony_quant_dequantize_rows_portable(type.ggmlId, w.baseAddress!, f.cols, o.baseAddress!, 0, f.rows)
                        } else {
                            balcony_quant_dequantize_rows(type.ggmlId, w.baseAddress!, f.cols, o.baseAddress!, 0, f.rows)
                        }
                    }
                }
                let differ = zip(out, f.expected).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differ == 0, "\(f.name) (\(portable ? "portable" : "native")): \(differ) of \(out.count) values differ")
            }
            // Through the matrix: widening any row range gives the same rows.
            let (m, values) = try Self.matrix(f, type: type, rows: f.rows)
            #expect(m.toFloats().map(\.bitPattern) == values.map(\.bitPattern), "\(f.name) via WeightMatrix")
            var tail = [Float](repeating: 0, count: 2 * f.cols)
            m.widenRows(1, 3, into: &tail)
            #expect(tail.map(\.bitPattern) == Array(values[f.cols...]).map(\.bitPattern), "\(f.name) rows 1..<3")
        }
    }

    /// Reads activation blocks back as floats: ggml's block_q8_0 (f16 d, 32 x int8), block_q8_1
    /// (f16 d, f16 s, 32 x int8) and block_q8_K (f32 d, 256 x int8, 16 x int16 sums).
    static func activationValues(_ bytes: UnsafeRawPointer, dotType: Int32, cols: Int) -> [Float] {
        var out = [Float]()
        switch dotType {
        case Int32(BALCONY_GGML_Q8_0), Int32(BALCONY_GGML_Q8_1):
            let stride = dotType == Int32(BALCONY_GGML_Q8_0) ? 34 : 36, header = stride - 32
            for b in 0..<cols / 32 {
                let d = HalfPrecision.f16ToF32(bytes.loadUnaligned(fromByteOffset: b * stride, as: UInt16.self))
                for j in 0..<32 { out.append(d * Float(bytes.load(fromByteOffset: b * stride + header + j, as: Int8.self))) }
            }
        default:
            for b in 0..<cols / 256 {
                let d = bytes.loadUnaligned(fromByteOffset: b * 292, as: Float.self)
                for j in 0..<256 { out.append(d * Float(bytes.load(fromByteOffset: b * 292 + 4 + j, as: Int8.self))) }
            }
        }
        return out
    }

    static func quantizedActivations(_ x: [Float], type: QuantizedType) -> [UInt8] {
        var xq = [UInt8](repeating: 0, count: type.activationRowBytes(cols: x.count))
        xq.withUnsafeMutableBytes { balcony_quant_activations(type.dotType, x, x.count, $0.baseAddress!) }
        return xq
    }

    @Test(arguments: QuantizedType.allCases)
    func activationBlocksFollowGGML(type: QuantizedType) throws {
        let cols = 768
        var g = TinyModels.LCG(state: 11)
        var x = g.values(cols, scale: 2)
        x[5] = 9  // one large value: its block's scale is set by it
        let xq = Self.quantizedActivations(x, type: type)
        let values = xq.withUnsafeBytes { Self.activationValues($0.baseAddress!, dotType: type.dotType, cols: cols) }
        let block = balcony_quant_block_values(type.dotType)
        for b in 0..<cols / block {
            let slice = b * block ..< (b + 1) * block
            let amax = x[slice].map(abs).max()!
            // Every value within half a step of the scale amax / 127, plus what rounding the scale to
            // F16 (Q8_0, Q8_1: 11 bits) moves the largest code, 127 steps.
            let step = amax / 127
            for i in slice { #expect(abs(values[i] - x[i]) <= step * (0.5 + 127.0 / 2048), "\(type) value \(i)") }
        }
        xq.withUnsafeBytes { p in
            switch type.dotType {
            case Int32(BALCONY_GGML_Q8_1):
                // s = d * sum(q), the term the Q4_1/Q5_1 minimums multiply.
                for b in 0..<cols / 32 {
                    let d = HalfPrecision.f16ToF32(p.loadUnaligned(fromByteOffset: b * 36, as: UInt16.self))
                    let s = HalfPrecision.f16ToF32(p.loadUnaligned(fromByteOffset: b * 36 + 2, as: UInt16.self))
                    let sum = (0..<32).reduce(0) { $0 + Int(p.load(fromByteOffset: b * 36 + 4 + $1, as: Int8.self)) }
                    #expect(abs(s - d * Float(sum)) <= abs(d * Float(sum)) * 1e-3 + 1e-6, "Q8_1 block \(b) sum")
                }
            case Int32(BALCONY_GGML_Q8_K):
                // bsums: the sums of each 16 values, which the k-quants' minimums multiply.
                for b in 0..<cols / 256 {
                    for k in 0..<16 {
                        let sum = (0..<16).reduce(0) { $0 + Int(p.load(fromByteOffset: b * 292 + 4 + 16 * k + $1, as: Int8.self)) }
                        #expect(Int(p.loadUnaligned(fromByteOffset: b * 292 + 260 + 2 * k, as: Int16.self)) == sum)
                    }
                }
            default:
                break
            }
        }
    }

    @Test(arguments: QuantizedType.allCases)
    func productsMatchADoublePrecisionSum(type: QuantizedType) throws {
        let f = try Self.fixtures(type)[0]
        let rows = 17
        let (m, values) = try Self.matrix(f, type: type, rows: rows)
        var g = TinyModels.LCG(state: 21)
        let x = g.values(f.cols, scale: 1)
        let xq = Self.quantizedActivations(x, type: type)
        let xd = xq.withUnsafeBytes { Self.activationValues($0.baseAddress!, dotType: type.dotType, cols: f.cols) }
        for portable in [false, true] {
            var y = [Float](repeating: .nan, count: rows)
            xq.withUnsafeBytes { q in
                if portable {
                    balcony_quant_gemv_portable(type.ggmlId, m.data, f.cols, q.baseAddress!, &y, 0, rows)
                } else {
                    balcony_quant_gemv(type.ggmlId, m.data, f.cols, q.baseAddress!, &y, 0, rows)
                }
            }
            for r in 0..<rows {
                var ref = 0.0, magnitude = 0.0
                for c in 0..<f.cols {
                    let p = Double(values[r * f.cols + c]) * Double(xd[c])
                    ref += p
                    magnitude += abs(p)
                }
                #expect(abs(Double(y[r]) - ref) <= 1e-5 * magnitude + 1e-6,
                        "\(type) \(portable ? "portable" : "native") row \(r): \(y[r]) vs \(ref)")
            }
            // A sub-range computes its rows with the same operations: the same bits.
            var part = [Float](repeating: .nan, count: 6)
            xq.withUnsafeBytes { q in
                part.withUnsafeMutableBufferPointer { p in
                    let y = p.baseAddress! - 3
                    if portable {
                        balcony_quant_gemv_portable(type.ggmlId, m.data, f.cols, q.baseAddress!, y, 3, 9)
                    } else {
                        balcony_quant_gemv(type.ggmlId, m.data, f.cols, q.baseAddress!, y, 3, 9)
                    }
                }
            }
            #expect(part.map(\.bitPattern) == y[3..<9].map(\.bitPattern), "\(type) rows 3..<9")
        }
    }

    /// Through `Linear`: every small batch row by row as a one-row call would give it (batched
    /// serving and speculative verification depend on it), and prefill within float rounding of the
    /// dequantized weights.
    @Test(arguments: QuantizedType.allCases)
    func linearIsRowInvariantAndPrefillUsesFloatActivations(type: QuantizedType) throws {
        let f = try Self.fixtures(type)[0]
        let rows = 40
        let (m, values) = try Self.matrix(f, type: type, rows: rows)
        let widened = WeightMatrix.owned(rows: rows, cols: f.cols, values: values)
        var g = TinyModels.LCG(state: 31)
        let x = g.values(Linear.rowInvariantLimit * f.cols, scale: 1)
        var batch = [Float](repeating: 0, count: Linear.rowInvariantLimit * rows)
        Linear.forward(m, x: x, tokens: Linear.rowInvariantLimit, y: &batch)
        for i in [0, 5, Linear.rowInvariantLimit - 1] {
            var one = [Float](repeating: 0, count: rows)
            Linear.forward(m, x: Array(x[i * f.cols ..< (i + 1) * f.cols]), tokens: 1, y: &one)
            #expect(one.map(\.bitPattern) == batch[i * rows ..< (i + 1) * rows].map(\.bitPattern), "\(type) row \(i)")
        }
        let t = 24
        let xp = g.values(t * f.cols, scale: 1)
        var a = [Float](repeating: 0, count: t * rows), b = a
        Linear.forward(m, x: xp, tokens: t, y: &a)
        Linear.forward(widened, x: xp, tokens: t, y: &b)
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-3, "\(type) prefill: \(worst)")
    }

    @Test func rowsThatAreNotWholeBlocksAreRefusedByName() throws {
        let bytes = [UInt8](repeating: 0, count: 1024)
        #expect {
            try bytes.withUnsafeBytes {
                _ = try WeightMatrix.fromFile(bytes: $0, dtype: .q4_K, rows: 2, cols: 288, storage: WeightStorage(owning: .allocate(byteCount: 1, alignment: 1)),
                                              source: "m.gguf", name: "blk.0.attn_q.weight")
            }
        } throws: { "\($0.localizedDescription)".contains("blk.0.attn_q.weight") && "\($0.localizedDescription)".contains("256") }
    }
}
