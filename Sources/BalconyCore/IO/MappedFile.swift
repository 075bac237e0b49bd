#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A read-only memory map of a whole file. Weights are read straight out of the map, so loading a
/// model costs page faults, not copies; the map lives as long as any tensor that points into it.
public final class MappedFile: @unchecked Sendable {
    public let url: URL
    public let bytes: UnsafeRawBufferPointer

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelFileError.cannotOpen(url.path, String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ModelFileError.cannotOpen(url.path, String(cString: strerror(errno)))
        }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw ModelFileError.cannotOpen(url.path, String(cString: strerror(errno)))
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    public var count: Int { bytes.count }

    deinit {
        if let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

/// A little-endian cursor over a byte buffer that reports truncation as an error instead of trapping.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int
    let context: String

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, context: String) {
        self.bytes = bytes
        self.offset = offset
        self.context = context
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func require(_ n: Int) throws {
        guard n >= 0, offset <= bytes.count, n <= bytes.count - offset else {
            let (needed, overflow) = offset.addingReportingOverflow(max(n, 0))
            throw ModelFileError.truncated(context, needed: overflow ? Int.max : needed, have: bytes.count)
        }
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try require(MemoryLayout<T>.size)
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func readFloat() throws -> Float {
        Float(bitPattern: try read(UInt32.self))
    }

    public mutating func readDouble() throws -> Double {
        Double(bitPattern: try read(UInt64.self))
    }

    public mutating func readBytes(_ n: Int) throws -> UnsafeRawBufferPointer {
        try require(n)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        offset += n
        return slice
    }

    public mutating func readString(length n: Int) throws -> String {
        let raw = try readBytes(n)
        return String(decoding: raw, as: UTF8.self)
    }
}
