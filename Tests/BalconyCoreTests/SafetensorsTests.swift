import Foundation
import Testing
@testable import BalconyCore

/// The safetensors reader and writer against a file written by the Python `safetensors` package
/// (Fixtures/safetensors, made by scripts/make_model_fixtures.py), and against malformed files.
@Suite struct SafetensorsTests {
    static let pythonFile = ModelFixtures.root.appendingPathComponent("safetensors/python.safetensors")

    struct PythonDoc: Decodable {
        struct Tensor: Decodable {
            var name: String
            var dtype: String
            var shape: [Int]
            var inputs: [Double]
            var bits: [UInt32]
            var values: [Double]
        }
        var metadata: [String: String]
        var tensors: [Tensor]
    }

    static func pythonDoc() throws -> PythonDoc {
        let data = try Data(contentsOf: ModelFixtures.root.appendingPathComponent("safetensors/python.json"))
        return try JSONDecoder().decode(PythonDoc.self, from: data)
    }

    /// The fixture's value rule, in Float as the script computes it in numpy float32.
    static func input(_ k: Int) -> Float { Float((k * 37) % 101 - 50) / Float(7) }

    @Test func readsWhatPythonWrote() throws {
        let doc = try Self.pythonDoc()
        let file = try SafetensorsFile(url: Self.pythonFile)
        #expect(file.metadata == doc.metadata)
        #expect(Set(file.tensors.map(\.name)) == Set(doc.tensors.map(\.name)))
        for t in doc.tensors {
            let ours = try #require(file[t.name])
            #expect(ours.dtype.rawValue == t.dtype)
            #expect(ours.shape == t.shape)
            #expect(ours.elementCount == t.bits.count)
            // Raw bits as the Python package stored them, then the decoded values.
            let raw = file.data(of: ours)
            let bits: [UInt32] = (0..<ours.elementCount).map { i in
                ours.dtype.size == 4 ? raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                    : UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            }
            #expect(bits == t.bits, "\(t.name)")
            #expect(try file.floats(of: ours).map(Double.init) == t.values, "\(t.name)")
        }
    }

    @Test func writesTheSameBytesAsPython() throws {
        let doc = try Self.pythonDoc()
        var k = 0
        var tensors: [(SafetensorsWriter.Tensor, [Float])] = []
        for t in doc.tensors {
            let n = t.shape.reduce(1, *)
            let values = (k..<(k + n)).map(Self.input)
            k += n
            // The rule must reproduce the script's inputs exactly, or the comparison is meaningless.
            #expect(values.map(Double.init) == t.inputs, "\(t.name)")
            let dtype = try #require(FileDType(rawValue: t.dtype))
            tensors.append((SafetensorsWriter.Tensor(name: t.name, dtype: dtype, shape: t.shape), values))
        }
        let temp = try TemporaryDirectory()
        let url = temp.file("ours.safetensors")
        try SafetensorsWriter.write(to: url, tensors: tensors.reversed(), metadata: doc.metadata)
        let ours = try Data(contentsOf: url)
        let theirs = try Data(contentsOf: Self.pythonFile)
        #expect(ours == theirs, "\(String(decoding: ours.prefix(300), as: UTF8.self)) vs \(String(decoding: theirs.prefix(300), as: UTF8.self))")
    }

    @Test func roundTripsValuesShapesAndMetadata() throws {
        var rng = Xoshiro256StarStar(seed: 7)
        let a = (0..<60).map { _ in Float(rng.nextUnitDouble() * 20 - 10) }
        // Values exactly representable in F16 and BF16 must come back bit for bit.
        let exact: [Float] = [0, 1, -2, 0.5, 0.375, 1024, -0.0078125, 3.0]
        let metadata = ["format": "pt", "quote\"back\\slash": "line\nbreak\ttab", "ünï": "cödé/slash", "ctl": "\u{01}"]
        let temp = try TemporaryDirectory()
        let url = temp.file("rt.safetensors")
        try SafetensorsWriter.write(to: url, tensors: [
            (.init(name: "a", dtype: .f32, shape: [3, 4, 5]), a),
            (.init(name: "h", dtype: .f16, shape: [8]), exact),
            (.init(name: "b", dtype: .bf16, shape: [2, 4]), exact),
            (.init(name: "z", dtype: .f16, shape: [0]), []),
        ], metadata: metadata)
        let file = try SafetensorsFile(url: url)
        #expect(file.metadata == metadata)
        #expect(file.tensors.map(\.name) == ["a", "b", "h", "z"])
        #expect(file["a"]?.shape == [3, 4, 5])
        #expect(try file.floats(of: #require(file["a"])) == a)
        #expect(try file.floats(of: #require(file["h"])) == exact)
        #expect(try file.floats(of: #require(file["b"])) == exact)
        #expect(try file.floats(of: #require(file["z"])) == [])
        #expect(file.dataStart % 8 == 0)
    }

    @Test func replacesAtomicallyAndLeavesNothingBehindOnFailure() throws {
        let temp = try TemporaryDirectory()
        let url = temp.file("m.safetensors")
        try SafetensorsWriter.write(to: url, tensors: [(.init(name: "x", dtype: .f32, shape: [2]), [1, 2])])
        let before = try Data(contentsOf: url)
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try SafetensorsWriter.write(to: url, tensors: [.init(name: "x", dtype: .f32, shape: [2]), .init(name: "y", dtype: .f32, shape: [1])]) { t in
                if t.name == "y" { throw Stop() }
                return [3, 4]
            }
        }
        #expect(try Data(contentsOf: url) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.url.path) == ["m.safetensors"])
        expectModelFileError(["'x'", "was given 1 values"]) { if case .writeFailed = $0 { return true }; return false } _: {
            try SafetensorsWriter.write(to: url, tensors: [(.init(name: "x", dtype: .f32, shape: [2]), [1])])
        }
        expectModelFileError(["Q8_0"]) { if case .writeFailed = $0 { return true }; return false } _: {
            try SafetensorsWriter.write(to: url, tensors: [(.init(name: "x", dtype: .q8_0, shape: [32]), [Float](repeating: 0, count: 32))])
        }
        expectModelFileError(["listed twice"]) { if case .writeFailed = $0 { return true }; return false } _: {
            try SafetensorsWriter.write(to: url, tensors: [(.init(name: "x", dtype: .f32, shape: [1]), [1]), (.init(name: "x", dtype: .f16, shape: [1]), [1])])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.url.path) == ["m.safetensors"])
        expectModelFileError(["no-such-dir"]) { if case .writeFailed = $0 { return true }; return false } _: {
            try SafetensorsWriter.write(to: temp.file("no-such-dir/m.safetensors"), tensors: [(.init(name: "x", dtype: .f32, shape: [1]), [1])])
        }
    }

    // MARK: Malformed files

    /// A file with `header` as its JSON header (padded with spaces) and `data` after it.
    private static func file(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: data)
        return out
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: Data
        var mentions: [String]
        var kind: String  // the ModelFileError case
        var testDescription: String { name }
    }

    static let malformed: [Case] = {
        let eight = [UInt8](repeating: 0, count: 8)
        func t(_ name: String, _ dtype: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
            "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(begin),\(end)]}"
        }
        return [
            Case(name: "shorter than the length prefix", bytes: Data([1, 2, 3]), mentions: ["truncated", "needs at least 8"], kind: "truncated"),
            Case(name: "header length beyond the file", bytes: file(header: "{}", data: [], declaredLength: 4096), mentions: ["truncated", "4104"], kind: "truncated"),
            Case(name: "header length over 100 MB", bytes: file(header: "{}", data: [], declaredLength: 1 << 40), mentions: ["100 MB"], kind: "corrupt"),
            Case(name: "header is not JSON", bytes: file(header: "{\"a\": [1, 2", data: []), mentions: ["not valid"], kind: "corrupt"),
            Case(name: "header is not an object", bytes: file(header: "[1,2]", data: []), mentions: ["start with '{'"], kind: "corrupt"),
            Case(name: "missing data_offsets", bytes: file(header: "{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", data: eight), mentions: ["data_offsets", "'x'"], kind: "corrupt"),
            Case(name: "unknown dtype", bytes: file(header: "{\(t("x", "F7", [2], 0, 8))}", data: eight), mentions: ["F7", "'x'"], kind: "unknownTensorType"),
            Case(name: "offsets beyond the data", bytes: file(header: "{\(t("x", "F32", [4], 0, 16))}", data: eight), mentions: ["truncated"], kind: "truncated"),
            Case(name: "shape disagrees with byte length", bytes: file(header: "{\(t("x", "F32", [3], 0, 8))}", data: eight), mentions: ["'x'", "needs 12 bytes", "span 8"], kind: "corrupt"),
            Case(name: "overlapping tensors", bytes: file(header: "{\(t("x", "F32", [2], 0, 8)),\(t("y", "F16", [2], 4, 8))}", data: eight), mentions: ["overlaps", "'y'"], kind: "corrupt"),
            Case(name: "gap between tensors", bytes: file(header: "{\(t("x", "F16", [1], 0, 2)),\(t("y", "F16", [1], 4, 6))}", data: [UInt8](repeating: 0, count: 6)), mentions: ["gap", "'y'"], kind: "corrupt"),
            Case(name: "bytes after the last tensor", bytes: file(header: "{\(t("x", "F32", [1], 0, 4))}", data: eight), mentions: ["4 bytes follow the last tensor"], kind: "corrupt"),
            Case(name: "misaligned offset", bytes: file(header: "{\(t("x", "F16", [1], 0, 2)),\(t("y", "F32", [1], 2, 6))}", data: [UInt8](repeating: 0, count: 6)), mentions: ["'y'", "not a multiple of its 4-byte element size"], kind: "corrupt"),
            Case(name: "negative dimension", bytes: file(header: "{\(t("x", "F32", [-2], 0, 8))}", data: eight), mentions: ["negative", "'x'"], kind: "corrupt"),
            Case(name: "reversed offsets", bytes: file(header: "{\(t("x", "F32", [2], 8, 0))}", data: eight), mentions: ["invalid data_offsets", "'x'"], kind: "corrupt"),
            Case(name: "metadata that is not strings", bytes: file(header: "{\"__metadata__\":{\"n\":1}}", data: []), mentions: ["__metadata__"], kind: "corrupt"),
        ]
    }()

    @Test(arguments: malformed)
    func malformedFileGivesASpecificError(_ c: Case) throws {
        let temp = try TemporaryDirectory()
        let url = temp.file("bad.safetensors")
        try c.bytes.write(to: url)
        expectModelFileError(c.mentions) { error in
            switch (error, c.kind) {
            case (.truncated, "truncated"), (.corrupt, "corrupt"), (.unknownTensorType, "unknownTensorType"): return true
            default: return false
            }
        } _: {
            _ = try SafetensorsFile(url: url)
        }
    }

    @Test(arguments: [7, 8, 100, 300, 465])
    func truncatedCopiesOfThePythonFileAreReported(_ length: Int) throws {
        let temp = try TemporaryDirectory()
        let url = try temp.truncatedCopy(of: Self.pythonFile, length: length, as: "cut.safetensors")
        expectModelFileError(["truncated"]) { if case .truncated = $0 { return true }; return false } _: {
            _ = try SafetensorsFile(url: url)
        }
    }
}
