#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes a file so that readers only ever see the old file or the complete new one: the bytes go
/// to a temporary file in the same directory (rename is only atomic within one file system), are
/// flushed to disk, and the temporary file is then renamed over the destination. If anything fails
/// the temporary file is removed and the destination is untouched.
public final class AtomicFileWriter {
    let destination: URL
    private let temporaryPath: String
    private var fd: Int32
    private var finished = false

    init(destination: URL) throws {
        self.destination = destination
        let directory = destination.deletingLastPathComponent().path
        let name = destination.lastPathComponent
        var random = SystemRandomNumberGenerator()
        temporaryPath = directory + "/." + name + ".tmp-\(getpid())-\(String(random.next(), radix: 36))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw ModelFileError.writeFailed(destination.path, String(cString: strerror(errno)))
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = posixWrite(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw fail(String(cString: strerror(errno)))
            }
            p += n
            left -= n
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes, closes and renames the temporary file over the destination.
    func commit() throws {
        guard fsync(fd) == 0 else { throw fail(String(cString: strerror(errno))) }
        let closed = close(fd)
        fd = -1
        guard closed == 0 else { throw fail(String(cString: strerror(errno))) }
        guard rename(temporaryPath, destination.path) == 0 else { throw fail(String(cString: strerror(errno))) }
        finished = true
        // The rename itself lives in the directory; flushing it makes the new file survive a
        // crash (training states rely on this). Best effort: some file systems refuse it.
        let directory = open(destination.deletingLastPathComponent().path, O_RDONLY)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    /// Abandons the write: closes and removes the temporary file.
    func discard() {
        guard !finished else { return }
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
        finished = true
    }

    private func fail(_ why: String) -> ModelFileError {
        discard()
        return .writeFailed(destination.path, why)
    }

    deinit { discard() }

    /// Writes `data` to `url` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        let writer = try AtomicFileWriter(destination: url)
        do {
            try data.withUnsafeBytes { try writer.write($0) }
            try writer.commit()
        } catch {
            writer.discard()
            throw error
        }
    }
}

// `write` is shadowed inside the class by its own methods.
@inline(__always)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}
