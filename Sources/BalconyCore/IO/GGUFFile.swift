import Foundation

/// One metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    public var intValue: Int? {
        switch self {
        case let .uint(v): return Int(exactly: v)
        case let .int(v): return Int(exactly: v)
        case let .float(v): return Int(exactly: v)
        case let .bool(v): return v ? 1 : 0
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .uint(v): return Double(v)
        case let .int(v): return Double(v)
        case let .float(v): return v
        default: return nil
        }
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        switch self {
        case let .bool(b): return b
        case let .uint(v): return v != 0
        case let .int(v): return v != 0
        default: return nil
        }
    }

    public var arrayValue: [GGUFValue]? {
        if case let .array(a) = self { return a }
        return nil
    }
}

/// ggml tensor types that Balcony knows by name. F32, F16, BF16 and the block types of
/// `QuantizedType` can be loaded.
public enum GGMLType: UInt32, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30

    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        default: return QuantizedType(ggmlId: rawValue)?.rawValue ?? "\(self)".uppercased()
        }
    }

    /// (values per block, bytes per block) for the types Balcony can read.
    var blockLayout: (values: Int, bytes: Int)? {
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        default: return QuantizedType(ggmlId: rawValue).map { ($0.blockValues, $0.blockBytes) }
        }
    }
}

/// Where one tensor lives in a GGUF file. `shape` is in PyTorch order (outermost first), the
/// reverse of ggml's `ne`: a linear layer with `ne = [in, out]` has `shape = [out, in]`.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    public let shape: [Int]
    public let typeCode: UInt32
    public let type: GGMLType?
    /// Absolute byte offset in the file.
    public let offset: Int
    public let byteCount: Int?

    public var elementCount: Int { shape.reduce(1, *) }
    public var typeName: String { type?.name ?? "ggml type \(typeCode)" }
}

/// A parsed GGUF v2/v3 file: metadata, tensor directory, and the mapped bytes behind them.
/// See https://github.com/ggml-org/ggml/blob/master/docs/gguf.md.
public final class GGUFFile: @unchecked Sendable {
    public let file: MappedFile
    public let version: Int
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let tensorsByName: [String: GGUFTensorInfo]
    public let alignment: Int

    public var path: String { file.url.path }

    public convenience init(url: URL) throws {
        try self.init(file: MappedFile(url: url))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.url.path
        var r = ByteReader(file.bytes, context: path)
        let magic = try r.read(UInt32.self)
        guard magic == 0x4655_4747 else { throw ModelFileError.badMagic(path, expected: "GGUF") }
        let version = Int(try r.read(UInt32.self))
        guard version == 2 || version == 3 else { throw ModelFileError.unsupportedVersion(path, version) }
        self.version = version
        let tensorCount = try r.read(UInt64.self)
        let kvCount = try r.read(UInt64.self)
        // Every entry needs at least a few bytes, so counts beyond the file size are corruption.
        guard tensorCount < UInt64(file.count), kvCount < UInt64(file.count) else {
            throw ModelFileError.corrupt(path, "header claims \(tensorCount) tensors and \(kvCount) metadata entries")
        }
        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try Self.readString(&r, path)
            let type = try r.read(UInt32.self)
            metadata[key] = try Self.readValue(&r, type: type, key: key, depth: 0, path: path)
        }
        self.metadata = metadata
        let alignment = metadata["general.alignment"]?.intValue ?? 32
        guard alignment > 0, alignment.nonzeroBitCount == 1 else {
            throw ModelFileError.corrupt(path, "general.alignment \(alignment) is not a power of two")
        }
        self.alignment = alignment

        var infos: [(String, [Int], UInt32, UInt64)] = []
        for _ in 0..<tensorCount {
            let name = try Self.readString(&r, path)
            let nDims = try r.read(UInt32.self)
            guard nDims <= 8 else { throw ModelFileError.corrupt(path, "tensor '\(name)' has \(nDims) dimensions") }
            var ne: [Int] = []
            for _ in 0..<nDims {
                let d = try r.read(UInt64.self)
                guard d <= UInt64(Int32.max) * 64 else { throw ModelFileError.corrupt(path, "tensor '\(name)' has dimension \(d)") }
                ne.append(Int(d))
            }
            let type = try r.read(UInt32.self)
            let offset = try r.read(UInt64.self)
            infos.append((name, Array(ne.reversed()), type, offset))
        }
        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        var tensors: [GGUFTensorInfo] = []
        var byName: [String: GGUFTensorInfo] = [:]
        for (name, shape, typeCode, rel) in infos {
            let type = GGMLType(rawValue: typeCode)
            var byteCount: Int? = nil
            // Each dimension is bounded above, but eight of them multiply past Int.max, and a
            // wrapped count (a [2^31, 2^31] F32 tensor "holds" 0 bytes) would pass the size check.
            guard let count = CheckedSize.product(shape) else {
                throw ModelFileError.corrupt(path, "tensor '\(name)' has shape \(shape), more values than a file can hold")
            }
            if let layout = type?.blockLayout {
                guard count % layout.values == 0 else {
                    throw ModelFileError.corrupt(path, "tensor '\(name)' has \(count) values, not a whole number of \(type!.name) blocks")
                }
                guard let n = CheckedSize.product(count / layout.values, layout.bytes) else {
                    throw ModelFileError.corrupt(path, "tensor '\(name)' of shape \(shape) and type \(type!.name) has a byte count beyond any file")
                }
                byteCount = n
            }
            guard rel <= UInt64(file.count), CheckedSize.fits(0, at: dataStart + Int(rel), in: file.count) else {
                throw ModelFileError.truncated(path, needed: dataStart &+ Int(clamping: rel), have: file.count)
            }
            let offset = dataStart + Int(rel)
            if let n = byteCount, !CheckedSize.fits(n, at: offset, in: file.count) {
                throw ModelFileError.truncated("\(path) (tensor '\(name)', \(n) bytes at offset \(offset))",
                                               needed: CheckedSize.sum(offset, n) ?? Int.max, have: file.count)
            }
            let info = GGUFTensorInfo(name: name, shape: shape, typeCode: typeCode, type: type, offset: offset, byteCount: byteCount)
            tensors.append(info)
            byName[name] = info
        }
        self.tensors = tensors
        self.tensorsByName = byName
    }

    /// The raw bytes of a tensor. Throws for types Balcony cannot size.
    public func data(of info: GGUFTensorInfo) throws -> UnsafeRawBufferPointer {
        guard let n = info.byteCount else { throw ModelFileError.unknownTensorType(path, info.typeName) }
        return UnsafeRawBufferPointer(rebasing: file.bytes[info.offset..<(info.offset + n)])
    }

    public subscript(key: String) -> GGUFValue? { metadata[key] }

    private static func readString(_ r: inout ByteReader, _ path: String) throws -> String {
        let n = try r.read(UInt64.self)
        guard n <= UInt64(r.remaining) else { throw ModelFileError.truncated(path, needed: r.offset + Int(clamping: n), have: r.bytes.count) }
        return try r.readString(length: Int(n))
    }

    /// Arrays nested deeper than this are refused. GGUF files in use nest none (the tokenizer's
    /// lists are flat); reading each level recurses, so an unbounded depth lets a small file
    /// exhaust the stack.
    static let maxArrayDepth = 4

    /// The fewest bytes a value of `type` takes in the file, to bound an array's claimed count by
    /// the bytes left before allocating or looping.
    private static func minimumSize(of type: UInt32) -> Int {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8  // a string is at least its 8-byte length
        case 9: return 12  // element type + count
        default: return 1  // unknown: reading the first element throws
        }
    }

    private static func readValue(_ r: inout ByteReader, type: UInt32, key: String, depth: Int, path: String) throws -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try r.read(UInt8.self)))
        case 1: return .int(Int64(try r.read(Int8.self)))
        case 2: return .uint(UInt64(try r.read(UInt16.self)))
        case 3: return .int(Int64(try r.read(Int16.self)))
        case 4: return .uint(UInt64(try r.read(UInt32.self)))
        case 5: return .int(Int64(try r.read(Int32.self)))
        case 6: return .float(Double(try r.readFloat()))
        case 7: return .bool(try r.read(UInt8.self) != 0)
        case 8: return .string(try readString(&r, path))
        case 9:
            guard depth < maxArrayDepth else {
                throw ModelFileError.corrupt(path, "metadata '\(key)' nests arrays more than \(maxArrayDepth) deep; the file is damaged or was made to crash readers")
            }
            let elementType = try r.read(UInt32.self)
            let count = try r.read(UInt64.self)
            let room = r.remaining / minimumSize(of: elementType)
            guard count <= UInt64(room) else {
                // Most often a cut-off download; report it as truncation, naming the key.
                throw ModelFileError.truncated("\(path) (metadata '\(key)', an array of \(count) elements)",
                                               needed: CheckedSize.sum(r.offset, CheckedSize.product(Int(clamping: count), minimumSize(of: elementType)) ?? Int.max) ?? Int.max,
                                               have: r.bytes.count)
            }
            // No reserveCapacity(count): a value takes more memory than its bytes in the file,
            // so the claimed count would still let a small file ask for a large allocation.
            var values: [GGUFValue] = []
            for _ in 0..<count { values.append(try readValue(&r, type: elementType, key: key, depth: depth + 1, path: path)) }
            return .array(values)
        case 10: return .uint(try r.read(UInt64.self))
        case 11: return .int(try r.read(Int64.self))
        case 12: return .float(try r.readDouble())
        default: throw ModelFileError.corrupt(path, "metadata '\(key)' has unknown value type \(type)")
        }
    }
}
