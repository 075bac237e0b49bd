import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads one file's contents into the cache as `blobs/ETAG`: resumable, verified, atomic.
///
/// Bytes go to `blobs/ETAG.incomplete`. A transfer that breaks off is retried with
/// `Range: bytes=N-` from where it stopped (and the next run resumes the same way); a server that
/// ignores Range and answers 200 makes the file start over. When the whole file is there its size
/// is checked, and its SHA-256 when the Hub lists one (LFS files); only then is it renamed to its
/// final name. A file that fails the check is deleted, so a corrupt download is never reused.
///
/// The caller holds the blob's lock (`HubCache.withBlobLock`).
struct HubBlobDownload {
    let cache: HubCache
    let etag: String
    /// The request for the whole file (the CDN location or the resolve URL); `Range` is added here.
    let request: URLRequest
    let expectedSize: Int64
    /// Lowercase hex SHA-256 to verify, when known.
    let sha256: String?
    /// The file's path in the repository, for messages and progress.
    let file: String
    let maxAttempts: Int
    /// Turns an HTTP error answer into the error to throw.
    let failure: (HTTPURLResponse, Data) -> HubError
    /// Called with the number of bytes in the file so far.
    let progress: (Int64) -> Void

    func run() async throws {
        let partial = cache.incompleteBlob(etag)
        try cache.createDirectory(partial.deletingLastPathComponent())
        let writer = try BlobWriter(url: partial, expectedSize: expectedSize, hashing: sha256 != nil,
                                    file: file, progress: progress)
        defer { try? writer.close() }
        var lastError: HubError?
        do {
            for attempt in 1...maxAttempts where writer.written < expectedSize {
                if attempt > 1 { try await Task.sleep(for: .milliseconds(200 * (attempt - 1))) }
                var attemptRequest = request
                writer.requestedOffset = writer.written
                if writer.written > 0 {
                    attemptRequest.setValue("bytes=\(writer.written)-", forHTTPHeaderField: "Range")
                }
                do {
                    let response = try await HubHTTP.perform(attemptRequest, redirects: .follow, sink: writer, label: file)
                    switch response.statusCode {
                    case 200, 206:
                        // A body that ends early without a transport error is still a broken transfer.
                        lastError = writer.written < expectedSize
                            ? .interrupted(file: file, reason: "the server sent \(writer.written) of \(expectedSize) bytes")
                            : nil
                    case 416:
                        // The server thinks our offset is past the end: the partial file is not
                        // what we took it for. Start over.
                        try writer.restart()
                        lastError = .interrupted(file: file, reason: "the server refused to resume")
                    default:
                        throw failure(response, writer.errorBody)
                    }
                } catch let error as HubError {
                    guard case .interrupted = error else { throw error }
                    lastError = error
                }
            }
        } catch let error as HubError {
            // More bytes than listed: the file is wrong, not merely unfinished.
            if case .sizeMismatch = error { cache.removeFile(partial) }
            throw error
        }
        if writer.written < expectedSize, let lastError { throw lastError }
        try writer.close()  // before the checks, so that a failed write-back is reported as such
        try verify(writer)
        try cache.commitBlob(etag)
    }

    private func verify(_ writer: BlobWriter) throws {
        let partial = cache.incompleteBlob(etag)
        let size = HubCache.fileSize(partial) ?? -1
        guard size == expectedSize else {
            cache.removeFile(partial)
            throw HubError.sizeMismatch(file: file, expected: expectedSize, actual: size)
        }
        if let sha256, let digest = writer.digest?.hex, digest != sha256.lowercased() {
            cache.removeFile(partial)
            throw HubError.checksumMismatch(file: file, expected: sha256.lowercased(), actual: digest)
        }
    }
}

/// Appends response bodies to the `.incomplete` file and hashes them on the way, so verifying
/// costs no second read. Lives for all attempts of one download, so the hash carries across
/// resumed transfers; bytes already on disk from an earlier run are hashed once at the start.
private final class BlobWriter: HubBodySink {
    private let url: URL
    private let handle: FileHandle
    private let expectedSize: Int64
    private let hashing: Bool
    private let file: String
    private let progress: (Int64) -> Void
    private var hasher: SHA256?
    private var status = 0
    private var closed = false

    /// Bytes in the file (all of them hashed).
    private(set) var written: Int64 = 0
    /// The offset the current request asked for, to check a 206's Content-Range against.
    var requestedOffset: Int64 = 0
    /// The start of an error answer's body, for its message.
    private(set) var errorBody = Data()

    init(url: URL, expectedSize: Int64, hashing: Bool, file: String, progress: @escaping (Int64) -> Void) throws {
        self.url = url
        self.expectedSize = expectedSize
        self.hashing = hashing
        self.file = file
        self.progress = progress
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw HubError.disk(path: url.path, reason: "cannot create the file")
            }
        }
        do {
            handle = try FileHandle(forUpdating: url)
        } catch {
            throw HubError.disk(path: url.path, reason: error.localizedDescription)
        }
        let existing = HubCache.fileSize(url) ?? 0
        if existing > expectedSize {
            try restart()
        } else {
            written = existing
            if hashing {
                var h = SHA256()
                if existing > 0 {
                    let mapped = try? MappedFile(url: url)
                    guard let mapped else { throw HubError.disk(path: url.path, reason: "cannot read the partial download") }
                    h.update(mapped.bytes)
                }
                hasher = h
            }
            try disk { _ = try handle.seekToEnd() }
        }
        if written > 0 { progress(written) }
    }

    var digest: SHA256.Digest? { hasher?.finalize() }

    /// Empties the file to download it from the start.
    func restart() throws {
        try disk { try handle.truncate(atOffset: 0) }
        written = 0
        hasher = hashing ? SHA256() : nil
    }

    /// Flushes the bytes to the disk and closes. The flush comes before the rename to the blob's
    /// final name: without it a crash can leave a blob under its final name whose contents never
    /// reached the disk, and a blob there is taken as complete.
    func close() throws {
        guard !closed else { return }
        closed = true
        try disk {
            do { try handle.synchronize() } catch {
                try? handle.close()
                throw error
            }
            try handle.close()
        }
    }

    func receive(_ response: HTTPURLResponse) throws {
        status = response.statusCode
        errorBody = Data()
        switch status {
        case 206:
            let range = response.value(forHTTPHeaderField: "Content-Range") ?? ""
            guard Self.rangeStart(range) == requestedOffset else {
                throw HubError.badResponse(url: response.url?.absoluteString ?? file,
                                           reason: "asked for bytes from \(requestedOffset) but got Content-Range '\(range)'")
            }
        case 200:
            if written > 0 { try restart() }  // Range ignored: the whole file follows
        default:
            break
        }
    }

    func receive(_ data: Data) throws {
        guard status == 200 || status == 206 else {
            if errorBody.count < 65536 { errorBody.append(data.prefix(65536 - errorBody.count)) }
            return
        }
        guard written + Int64(data.count) <= expectedSize else {
            throw HubError.sizeMismatch(file: file, expected: expectedSize, actual: written + Int64(data.count))
        }
        try disk { try handle.write(contentsOf: data) }
        hasher?.update(data)
        written += Int64(data.count)
        progress(written)
    }

    private func disk(_ body: () throws -> Void) throws {
        do { try body() } catch { throw HubError.disk(path: url.path, reason: error.localizedDescription) }
    }

    /// START from `bytes START-END/TOTAL`.
    private static func rangeStart(_ header: String) -> Int64? {
        guard header.hasPrefix("bytes ") else { return nil }
        return Int64(header.dropFirst(6).prefix { $0 != "-" })
    }
}
