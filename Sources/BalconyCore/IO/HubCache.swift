#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One repository's folder in the cache, laid out exactly as `huggingface_hub` lays it out so
/// that either tool reuses what the other downloaded:
///
/// ```
/// CACHE/models--OWNER--NAME/
///     refs/main                      the commit hash that `main` pointed to
///     blobs/ETAG                     file contents, named by ETag (sha256 for LFS files,
///                                    git blob sha1 for small ones)
///     blobs/ETAG.incomplete          a download in progress, resumed with Range
///     snapshots/COMMIT/PATH          relative symlinks into ../../blobs (deeper for subfolders)
/// CACHE/.locks/models--OWNER--NAME/ETAG.lock
/// ```
///
/// Every name that comes from the server (commit, ETag, file paths) is checked before it becomes
/// part of a path, so a hostile endpoint cannot write outside the cache.
struct HubCache: Sendable {
    let root: URL
    let repo: String

    /// `models--OWNER--NAME`.
    var folderName: String { "models--" + repo.replacingOccurrences(of: "/", with: "--") }
    var repoFolder: URL { root.appendingPathComponent(folderName, isDirectory: true) }

    func refFile(_ revision: String) -> URL { repoFolder.appendingPathComponent("refs/" + revision) }
    func snapshot(_ commit: String) -> URL { repoFolder.appendingPathComponent("snapshots/" + commit, isDirectory: true) }
    func blob(_ etag: String) -> URL { repoFolder.appendingPathComponent("blobs/" + etag) }
    func incompleteBlob(_ etag: String) -> URL { repoFolder.appendingPathComponent("blobs/" + etag + ".incomplete") }
    func lockFile(_ etag: String) -> URL {
        root.appendingPathComponent(".locks/" + folderName + "/" + etag + ".lock")
    }

    // MARK: - Refs and snapshots

    /// The commit a revision resolves to without the network: a full commit hash with a snapshot
    /// folder names itself; a branch or tag is looked up in `refs/`.
    func cachedCommit(for revision: String) -> String? {
        if Self.isCommitHash(revision), directoryExists(snapshot(revision)) { return revision }
        guard let text = try? String(contentsOf: refFile(revision), encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return Self.isSafeComponent(commit) ? commit : nil
    }

    /// Records that `revision` (a branch or tag) points at `commit`.
    func writeRef(_ revision: String, commit: String) throws {
        guard revision != commit else { return }
        try writeAtomically(Data(commit.utf8), to: refFile(revision))
    }

    /// Repository paths of every file in a snapshot folder (symlinks included), for offline mode.
    func snapshotFiles(_ commit: String) -> [String] {
        let base = snapshot(commit)
        guard let walker = FileManager.default.enumerator(atPath: base.path) else { return [] }
        var paths: [String] = []
        while let relative = walker.nextObject() as? String {
            if Self.fileSize(base.appendingPathComponent(relative)) != nil { paths.append(relative) }
        }
        return paths.sorted()
    }

    /// Points `snapshots/COMMIT/PATH` at `blobs/ETAG` with a relative symlink, replacing any old
    /// entry atomically (a new link is made beside it and renamed over it).
    func link(path: String, commit: String, etag: String) throws {
        let entry = snapshot(commit).appendingPathComponent(path)
        let folder = entry.deletingLastPathComponent()
        try createDirectory(folder)
        let depth = path.split(separator: "/").count - 1 + 2  // up through PATH's folders, COMMIT, snapshots
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        let temporary = folder.appendingPathComponent(".\(entry.lastPathComponent).\(UUID().uuidString).link")
        guard symlink(target, temporary.path) == 0 else {
            throw HubError.disk(path: temporary.path, reason: Self.errnoDescription())
        }
        try rename(temporary, to: entry)
    }

    // MARK: - Blobs

    /// Moves a verified download into place under its final blob name.
    /// Whether `blobs/ETAG` is there with `size` bytes and, when `sha256` is known, that digest.
    /// A blob found in the cache (left by another revision, another process, or a crash) is
    /// re-hashed before it is linked: its size alone says nothing about a flipped or zeroed block.
    func blobIsIntact(_ etag: String, size: Int64, sha256: String?) -> Bool {
        let url = blob(etag)
        guard Self.fileSize(url) == size else { return false }
        guard let sha256 else { return true }
        if size == 0 { return SHA256().finalize().hex == sha256.lowercased() }
        guard let mapped = try? MappedFile(url: url) else { return false }
        var h = SHA256()
        h.update(mapped.bytes)
        return h.finalize().hex == sha256.lowercased()
    }

    func commitBlob(_ etag: String) throws {
        try rename(incompleteBlob(etag), to: blob(etag))
    }

    /// Runs `body` while holding an exclusive lock on one blob, so that two processes sharing a
    /// cache never append to the same `.incomplete` file. Waits (without blocking a thread) while
    /// another process holds it.
    func withBlobLock<T>(_ etag: String, _ body: () async throws -> T) async throws -> T {
        let url = lockFile(etag)
        try createDirectory(url.deletingLastPathComponent())
        let fd = open(url.path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw HubError.disk(path: url.path, reason: Self.errnoDescription()) }
        defer { close(fd) }  // closing the descriptor also releases the lock
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw HubError.disk(path: url.path, reason: Self.errnoDescription())
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await body()
    }

    // MARK: - File-system helpers

    /// The size of a regular file (following symlinks), or nil when there is none.
    static func fileSize(_ url: URL) -> Int64? {
        var info = stat()
        guard stat(url.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    func directoryExists(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw HubError.disk(path: url.path, reason: error.localizedDescription)
        }
    }

    func removeFile(_ url: URL) {
        unlink(url.path)
    }

    /// `rename(2)`: atomic, and replaces the destination (FileManager's move refuses to).
    func rename(_ from: URL, to: URL) throws {
        guard Foundation.rename(from.path, to.path) == 0 else {
            throw HubError.disk(path: to.path, reason: Self.errnoDescription())
        }
    }

    func writeAtomically(_ data: Data, to url: URL) throws {
        try createDirectory(url.deletingLastPathComponent())
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw HubError.disk(path: url.path, reason: error.localizedDescription)
        }
    }

    static func errnoDescription() -> String { String(cString: strerror(errno)) }

    // MARK: - Names from the server

    /// A 40-digit hexadecimal git commit hash.
    static func isCommitHash(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { isHexDigit($0) }
    }

    static func isHexDigit(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }

    /// A single file name made of letters, digits, `-`, `_` and `.` that is not `.` or `..`:
    /// what commits and ETags are, and all that is allowed to become a path component.
    static func isSafeComponent(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 200, text != ".", text != ".." else { return false }
        return text.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_" || c == "."
        }
    }

    /// A relative path whose components are neither empty, `.` nor `..`: it stays inside the
    /// folder it is appended to.
    static func isSafeRelativePath(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && $0 != "." && $0 != ".."
        }
    }
}
