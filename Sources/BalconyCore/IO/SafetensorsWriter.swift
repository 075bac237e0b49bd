import Foundation

/// Writes safetensors files that the reference `safetensors` package (Python/Rust) writes byte for
/// byte the same: tensors ordered by element type (larger first: F32, BF16, F16) and then by name,
/// compact JSON with `__metadata__` first, the header padded with spaces to a multiple of 8 bytes.
///
/// Tensors are produced one at a time by a callback in file order, so a model never needs to be
/// in memory twice; the file appears atomically (temporary file in the same directory + rename).
public enum SafetensorsWriter {
    /// One tensor to write. `dtype` is the element type in the file (F32, F16 or BF16); values
    /// are always given as Float and rounded to nearest-even, as PyTorch's `.to()` does.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: FileDType
        public var shape: [Int]

        public init(name: String, dtype: FileDType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }

        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The order the reference implementation lays tensors out in: descending by its dtype
    /// enumeration (which runs from 1-byte to 8-byte types, so alignment is kept), then by name.
    public static func fileOrder(_ tensors: [Tensor]) -> [Tensor] {
        func rank(_ t: FileDType) -> Int {
            switch t { case .f32: 3; case .bf16: 2; case .f16: 1; default: 0 }
        }
        return tensors.sorted { a, b in
            rank(a.dtype) != rank(b.dtype) ? rank(a.dtype) > rank(b.dtype) : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }

    /// The 8-byte length prefix and padded JSON header for `tensors`, which must already be in
    /// file order. `metadata` entries are written sorted by key (the reference writes them in hash
    /// order, so only single-entry maps can match it byte for byte).
    public static func header(tensors: [Tensor], metadata: [String: String]?, path: String = "safetensors header") throws -> [UInt8] {
        var json = "{"
        var first = true
        if let metadata {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { jsonString($0) + ":" + jsonString(metadata[$0] ?? "") }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        var seen = Set<String>()
        for t in tensors {
            guard t.name != "__metadata__" else { throw ModelFileError.writeFailed(path, "'__metadata__' cannot be a tensor name") }
            guard seen.insert(t.name).inserted else { throw ModelFileError.writeFailed(path, "tensor '\(t.name)' is listed twice") }
            guard let dtype = SafetensorsDType(t.dtype) else {
                throw ModelFileError.writeFailed(path, "tensor '\(t.name)': safetensors cannot hold \(t.dtype.rawValue); use F32, F16 or BF16")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }) else {
                throw ModelFileError.writeFailed(path, "tensor '\(t.name)' has a negative dimension in \(t.shape)")
            }
            let end = offset + t.elementCount * dtype.size
            if !first { json += "," }
            first = false
            json += jsonString(t.name) + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":["
            json += t.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var bytes = Array(json.utf8)
        // Pad so the data section starts 8-aligned (the prefix itself is 8 bytes).
        bytes += [UInt8](repeating: UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
        let length = UInt64(bytes.count).littleEndian
        return withUnsafeBytes(of: length) { Array($0) } + bytes
    }

    /// Writes `tensors` to `url`, calling `values` once per tensor in file order; each call must
    /// return exactly `elementCount` values.
    /// - Throws: `ModelFileError.writeFailed` naming the file and the problem.
    public static func write(to url: URL, tensors: [Tensor], metadata: [String: String]? = nil,
                             values: (Tensor) throws -> [Float]) throws {
        let ordered = fileOrder(tensors)
        let head = try header(tensors: ordered, metadata: metadata, path: url.path)
        let writer = try AtomicFileWriter(destination: url)
        do {
            try writer.write(head)
            for t in ordered {
                let v = try values(t)
                guard v.count == t.elementCount else {
                    throw ModelFileError.writeFailed(url.path, "tensor '\(t.name)' of shape \(t.shape) was given \(v.count) values")
                }
                try writeValues(v, as: t.dtype, to: writer)
            }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Writes tensors whose values are already in memory.
    public static func write(to url: URL, tensors: [(Tensor, [Float])], metadata: [String: String]? = nil) throws {
        var byName: [String: [Float]] = [:]
        for (t, v) in tensors { byName[t.name] = v }
        try write(to: url, tensors: tensors.map(\.0), metadata: metadata) { byName[$0.name] ?? [] }
    }

    private static func writeValues(_ v: [Float], as dtype: FileDType, to writer: AtomicFileWriter) throws {
        // All supported platforms are little-endian, which is the file's byte order.
        if dtype == .f32 {
            try v.withUnsafeBytes { try writer.write($0) }
            return
        }
        // Convert in chunks so a large tensor is never held twice.
        let chunk = 1 << 16
        var buffer = [UInt16](repeating: 0, count: min(chunk, v.count))
        var start = 0
        while start < v.count {
            let n = min(chunk, v.count - start)
            for i in 0..<n {
                buffer[i] = dtype == .f16 ? HalfPrecision.f32ToF16(v[start + i]) : HalfPrecision.f32ToBF16(v[start + i])
            }
            try buffer.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<(2 * n)])) }
            start += n
        }
    }

    /// A JSON string literal escaped as serde_json (the reference's encoder) escapes it: quote,
    /// backslash and control characters only; `/` and non-ASCII are written as they are.
    static func jsonString(_ s: String) -> String { JSONStringLiteral.quoted(s) }
}
