import Foundation
import Testing
@testable import BalconyCore

/// Sizes read from files that overflow, or nest, or claim more than the file holds (issue 16,
/// defects 1 and 2). Each must be a clear error naming the field, never a wrapped size: the
/// release build compiles with -Ounchecked, where a wrapped product becomes an out-of-bounds write.
@Suite struct HostileSizeTests {
    static func config(heads: Int = 2, kvHeads: Int = 2, headDim: Int = 4, context: Int = 64, dim: Int = 8) -> LlamaConfig {
        LlamaConfig(dim: dim, hiddenDim: 16, layerCount: 2, headCount: heads, kvHeadCount: kvHeads, headDim: headDim,
                    vocabSize: 32, contextLength: context)
    }

    func expectCorrupt(_ config: LlamaConfig, mentioning word: String, sourceLocation: SourceLocation = #_sourceLocation) {
        expectModelFileError([word, "hostile.json"], sourceLocation: sourceLocation) {
            if case .corrupt = $0 { return true }; return false
        } _: { try config.validate(source: "hostile.json") }
    }

    @Test func headCountsWhoseProductWrapsAreRefused() throws {
        // 2^62 + 1 heads of 4: qDim wraps to 4 and passes every shape check without bounds.
        let c = Self.config(heads: (1 << 62) + 1, kvHeads: (1 << 62) + 1, headDim: 4)
        expectCorrupt(c, mentioning: "heads")
        expectCorrupt(Self.config(headDim: 1 << 40), mentioning: "head_dim")
    }

    @Test func contextLengthThatWrapsTheCacheIsRefused() {
        expectCorrupt(Self.config(context: 1 << 60), mentioning: "context_length")
        expectCorrupt(Self.config(context: Int.max), mentioning: "context_length")
        #expect(throws: Never.self) { try Self.config(context: 1 << 17).validate(source: "ok") }
    }

    @Test func ggufTensorWhoseByteCountWrapsIsRefused() throws {
        let temp = try TemporaryDirectory()
        var b = GGUFBuilder.llama()
        // [2^31, 2^31] F32: 2^62 values, 2^64 bytes, which wraps to 0 in Int arithmetic.
        b.tensors.append(GGUFBuilder.Tensor(name: "huge.weight", shape: [1 << 31, 1 << 31], type: 0, data: []))
        try b.write(to: temp.file("huge.gguf"))
        expectModelFileError(["huge.weight"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try GGUFFile(url: temp.file("huge.gguf"))
        }
    }

    @Test func ggufDeeplyNestedArraysAreRefusedWithoutRecursingIntoThem() throws {
        let temp = try TemporaryDirectory()
        // 50,000 levels of array-of-one-array: 600 KB that used to recurse once per level.
        let levels = 50_000
        var bytes: [UInt8] = []
        bytes.reserveCapacity(levels * 12 + 16)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        for _ in 0..<levels - 1 { u32(9); u64(1) }  // element type: array; one element
        u32(4); u64(1); u32(7)  // innermost: one uint32
        var b = GGUFBuilder.llama()
        b.set("hostile.nested", .raw(type: 9, bytes: bytes))
        try b.write(to: temp.file("nested.gguf"))
        expectModelFileError(["hostile.nested", "nests arrays"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try GGUFFile(url: temp.file("nested.gguf"))
        }
        // Two levels, as the format allows, still read.
        var ok = GGUFBuilder.llama()
        var two: [UInt8] = []
        for v: UInt64 in [2] { withUnsafeBytes(of: UInt32(9).littleEndian) { two += $0 }; withUnsafeBytes(of: v.littleEndian) { two += $0 } }
        for _ in 0..<2 {
            withUnsafeBytes(of: UInt32(4).littleEndian) { two += $0 }
            withUnsafeBytes(of: UInt64(1).littleEndian) { two += $0 }
            withUnsafeBytes(of: UInt32(5).littleEndian) { two += $0 }
        }
        ok.set("fine.nested", .raw(type: 9, bytes: two))
        try ok.write(to: temp.file("two.gguf"))
        let file = try GGUFFile(url: temp.file("two.gguf"))
        #expect(file["fine.nested"] == .array([.array([.uint(5)]), .array([.uint(5)])]))
    }

    @Test func ggufArrayCountBeyondTheBytesLeftIsRefused() throws {
        let temp = try TemporaryDirectory()
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(8).littleEndian) { bytes += $0 }  // strings: at least 8 bytes each
        withUnsafeBytes(of: UInt64(100_000).littleEndian) { bytes += $0 }  // in a file of a few KB
        var b = GGUFBuilder.llama()
        b.set("hostile.strings", .raw(type: 9, bytes: bytes))
        try b.write(to: temp.file("count.gguf"))
        expectModelFileError(["hostile.strings", "100000"]) { if case .truncated = $0 { return true }; return false } _: {
            _ = try GGUFFile(url: temp.file("count.gguf"))
        }
    }

    /// A llama2.c v1 header whose sizes are each below the old per-field limit (2^24) but whose
    /// parameter count wraps Int.
    @Test func llama2cHeaderWhoseSizesOverflowIsRefused() throws {
        let temp = try TemporaryDirectory()
        var header: [UInt8] = []
        func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        withUnsafeBytes(of: UInt32(0x616b_3432).littleEndian) { header += $0 }
        i32(1)  // version
        for v: Int32 in [1 << 23, 1 << 23, 4095, 1 << 22, 1 << 22, 1 << 23, 1 << 23] { i32(v) }
        header.append(1)  // shared classifier
        header += [UInt8](repeating: 0, count: 256 - header.count)
        try Data(header + [UInt8](repeating: 0, count: 64)).write(to: temp.file("wrap.bin"))
        expectModelFileError(["dim 8388608"]) { if case .corrupt = $0 { return true }; return false } _: {
            _ = try Llama2cCheckpoint.load(url: temp.file("wrap.bin"))
        }
    }

    @Test func trainingTokenIdsBeyondInt32AreRefused() {
        #expect(throws: TrainingDataError.self) {
            _ = try TrainingData(documents: [[1, 2, 3, 1 << 33, 4, 5]], separator: .bos(1), sequenceLength: 2, seed: 1)
        }
        do {
            _ = try TrainingData(documents: [[1, 2], [3, -7, 4]], separator: .bos(1), sequenceLength: 2, seed: 1)
            Issue.record("a negative token id was packed")
        } catch {
            #expect("\(error.localizedDescription)".contains("token id -7"), "\(error.localizedDescription)")
        }
    }

    @Test func overlongDocumentsAreRefusedBeforeTokenizing() throws {
        let temp = try TemporaryDirectory()
        try Data(("short story" + TrainingDocuments.documentMarker + String(repeating: "long ", count: 40)).utf8).write(to: temp.file("t.txt"))
        #expect(try TrainingDocuments.documents(in: temp.file("t.txt"), maxDocumentBytes: 1000).count == 2)
        do {
            _ = try TrainingDocuments.documents(in: temp.file("t.txt"), maxDocumentBytes: 100)
            Issue.record("a document over the limit was accepted")
        } catch {
            #expect(error.localizedDescription.contains("document 2"), "\(error.localizedDescription)")
            #expect(error.localizedDescription.contains("t.txt"), "\(error.localizedDescription)")
        }
    }
}
