import Foundation

/// Element types of the safetensors format (the names its JSON header uses). All are recognized
/// so that any valid file can be checked; only F32, F16 and BF16 can become weights.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8E5M2 = "F8_E5M2", f8E4M3 = "F8_E4M3", f8E8M0 = "F8_E8M0"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// The matching weight element type, for the types Balcony can load.
    public var fileDType: FileDType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        default: return nil
        }
    }

    public init?(_ type: FileDType) {
        switch type {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        default: return nil
        }
    }
}

/// Where one tensor lives in a safetensors file.
public struct SafetensorsTensor: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    /// PyTorch order (outermost first); `[]` is a scalar.
    public let shape: [Int]
    /// Absolute byte offset in the file.
    public let offset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed, memory-mapped safetensors file (https://github.com/huggingface/safetensors): an
/// 8-byte little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}}` with an
/// optional `__metadata__` string map, then the tensor bytes.
///
/// Validation follows the reference implementation (the Rust crate behind the Python package):
/// the tensors must tile the data section exactly — no gaps, no overlaps, nothing after the last
/// one — and each byte range must equal shape × element size. In addition every tensor must start
/// at a multiple of its element size, which every writer of the reference family guarantees and
/// which lets F32 weights be used in place.
public final class SafetensorsFile: @unchecked Sendable {
    public let file: MappedFile
    /// The `__metadata__` map (e.g. `["format": "pt"]`); empty when the file has none.
    public let metadata: [String: String]
    /// Tensors in file order.
    public let tensors: [SafetensorsTensor]
    public let tensorsByName: [String: SafetensorsTensor]
    /// Offset of the first tensor byte (8 + header length).
    public let dataStart: Int

    /// The reference implementation refuses headers over 100 MB; so do we, before parsing JSON.
    public static let maxHeaderBytes = 100_000_000

    public var path: String { file.url.path }

    public convenience init(url: URL) throws {
        try self.init(file: MappedFile(url: url))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.url.path
        var reader = ByteReader(file.bytes, context: path)
        let declared = try reader.read(UInt64.self)
        guard declared <= UInt64(Self.maxHeaderBytes) else {
            throw ModelFileError.corrupt(path, "safetensors header length \(declared) exceeds the 100 MB limit; this is not a safetensors file or its first 8 bytes are damaged")
        }
        let headerLength = Int(declared)
        guard headerLength <= file.count - 8 else {
            throw ModelFileError.truncated(path, needed: 8 + headerLength, have: file.count)
        }
        let headerBytes = try reader.readBytes(headerLength)
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw ModelFileError.corrupt(path, "safetensors header does not start with '{'")
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(headerBytes))
        } catch let error as DecodingError {
            throw ModelFileError.corrupt(path, "safetensors header is not valid: \(Self.describe(error))")
        } catch {
            throw ModelFileError.corrupt(path, "safetensors header is not valid JSON: \(error)")
        }
        dataStart = 8 + headerLength
        let dataLength = file.count - dataStart

        var tensors: [SafetensorsTensor] = []
        tensors.reserveCapacity(header.entries.count)
        for (name, entry) in header.entries {
            guard let dtype = SafetensorsDType(rawValue: entry.dtype) else {
                throw ModelFileError.unknownTensorType(path, "\(entry.dtype) (tensor '\(name)')")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw ModelFileError.corrupt(path, "tensor '\(name)' has a negative dimension in shape \(entry.shape)")
            }
            guard entry.dataOffsets.count == 2 else {
                throw ModelFileError.corrupt(path, "tensor '\(name)' has \(entry.dataOffsets.count) data_offsets instead of 2")
            }
            let (begin, end) = (entry.dataOffsets[0], entry.dataOffsets[1])
            guard begin >= 0, begin <= end else {
                throw ModelFileError.corrupt(path, "tensor '\(name)' has invalid data_offsets [\(begin), \(end)]")
            }
            guard end <= dataLength else {
                throw ModelFileError.truncated(path, needed: dataStart + end, have: file.count)
            }
            var count = 1
            for d in entry.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw ModelFileError.corrupt(path, "tensor '\(name)' shape \(entry.shape) is too large") }
                count = product
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == end - begin else {
                throw ModelFileError.corrupt(path, "tensor '\(name)' of shape \(entry.shape) and type \(dtype.rawValue) needs \(overflow ? "too many" : String(bytes)) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            guard begin % dtype.size == 0 else {
                throw ModelFileError.corrupt(path, "tensor '\(name)' starts at data offset \(begin), not a multiple of its \(dtype.size)-byte element size")
            }
            tensors.append(SafetensorsTensor(name: name, dtype: dtype, shape: entry.shape, offset: dataStart + begin, byteCount: bytes))
        }
        // Ties (empty tensors at the same offset) are ordered by name so the order is deterministic.
        tensors.sort { ($0.offset, $0.byteCount, $0.name) < ($1.offset, $1.byteCount, $1.name) }
        var position = dataStart
        for t in tensors {
            guard t.offset >= position else {
                throw ModelFileError.corrupt(path, "tensor '\(t.name)' overlaps the tensor before it (starts at data offset \(t.offset - dataStart), which is before \(position - dataStart))")
            }
            guard t.offset == position else {
                throw ModelFileError.corrupt(path, "there is a gap of \(t.offset - position) bytes before tensor '\(t.name)' (data offset \(position - dataStart))")
            }
            position = t.offset + t.byteCount
        }
        guard position == file.count else {
            throw ModelFileError.corrupt(path, "\(file.count - position) bytes follow the last tensor; the header and the file size disagree")
        }
        var byName: [String: SafetensorsTensor] = [:]
        for t in tensors { byName[t.name] = t }
        self.tensors = tensors
        self.tensorsByName = byName
        self.metadata = header.metadata
    }

    public subscript(name: String) -> SafetensorsTensor? { tensorsByName[name] }

    /// The raw bytes of a tensor, inside the mapping.
    public func data(of tensor: SafetensorsTensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[tensor.offset..<(tensor.offset + tensor.byteCount)])
    }

    /// A F32, F16 or BF16 tensor's values as Float (tests, norms and biases; not for big tensors).
    public func floats(of tensor: SafetensorsTensor) throws -> [Float] {
        guard let dtype = tensor.dtype.fileDType else {
            throw ModelFileError.unknownTensorType(path, "\(tensor.dtype.rawValue) (tensor '\(tensor.name)')")
        }
        return try TensorConversion.floats(data(of: tensor), dtype: dtype, count: tensor.elementCount, source: path)
    }

    // MARK: Header decoding

    private struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]

        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private struct Header: Decodable {
        var metadata: [String: String] = [:]
        var entries: [(String, Entry)] = []

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try container.decode([String: String].self, forKey: key)
                } else {
                    entries.append((key.stringValue, try container.decode(Entry.self, forKey: key)))
                }
            }
        }
    }

    /// A one-line account of a decoding error: where in the header, and what was wrong.
    static func describe(_ error: DecodingError) -> String {
        func where_(_ path: [CodingKey]) -> String {
            path.isEmpty ? "at the top level" : "at '" + path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case let .typeMismatch(_, c), let .valueNotFound(_, c):
            return "\(c.debugDescription) \(where_(c.codingPath))"
        case let .keyNotFound(key, c):
            return "missing key '\(key.stringValue)' \(where_(c.codingPath))"
        case let .dataCorrupted(c):
            return "\(c.debugDescription) \(where_(c.codingPath))"
        @unknown default:
            return "\(error)"
        }
    }
}
