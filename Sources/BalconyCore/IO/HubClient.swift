import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One file of a repository as the Hub lists it.
public struct HubRepoFile: Sendable, Equatable {
    /// Path inside the repository, e.g. `config.json` or `stories260K/stories260K.bin`.
    public var path: String
    /// Size in bytes, when listed.
    public var size: Int64?
    /// Lowercase hex SHA-256 of the contents; the Hub lists it for LFS files (the large ones).
    public var sha256: String?

    public init(path: String, size: Int64? = nil, sha256: String? = nil) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// A repository's files at one commit.
public struct HubRepoListing: Sendable, Equatable {
    /// The commit the requested revision resolved to.
    public var commit: String
    public var files: [HubRepoFile]
}

/// Progress of a download, reported while bytes arrive (and once for each file already cached).
public struct HubProgress: Sendable, Equatable {
    /// Path of the file inside the repository.
    public var file: String
    /// 0-based position of the file among the files being fetched, and their number.
    public var fileIndex: Int
    public var fileCount: Int
    public var bytesDone: Int64
    public var bytesTotal: Int64
}

/// Downloads Hugging Face Hub repositories into a `huggingface_hub`-compatible cache (see
/// `HubCache` for the layout) and resolves them from it offline.
///
/// ```swift
/// let client = HubClient()                        // HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HUB_OFFLINE
/// let folder = try await client.download(repo: "karpathy/tinyllamas", subfolder: "stories260K")
/// ```
public struct HubClient: Sendable {
    public var configuration: HubConfiguration

    public init(configuration: HubConfiguration = .fromEnvironment()) {
        self.configuration = configuration
    }

    // MARK: - Public API

    /// Lists a repository's files at a revision (`GET /api/models/REPO/revision/REV?blobs=true`).
    public func listFiles(repo: String, revision: String = "main") async throws -> HubRepoListing {
        try HubModelReference.validate(repo: repo, revision: revision)
        let url = try makeURL("api/models/\(repo)/revision/\(Self.encode(revision))?blobs=true")
        let sink = HubMemorySink(url: url)
        let response = try await HubHTTP.perform(request(url), redirects: .follow, sink: sink, label: "the file list of \(repo)")
        guard response.statusCode == 200 else {
            throw error(for: response, body: sink.data, repo: repo, revision: revision, path: nil, url: url)
        }
        return try Self.decodeListing(sink.data, url: url)
    }

    /// Makes the selected files of a repository available in the cache and returns the snapshot
    /// folder `CACHE/models--OWNER--NAME/snapshots/COMMIT` (the repository's root, even when a
    /// subfolder was asked for).
    ///
    /// Files already complete in the cache are not downloaded again; interrupted downloads resume.
    /// Files are fetched at the commit the revision resolved to, so a branch that moves meanwhile
    /// cannot mix two versions; `refs/REVISION` is updated once every file is in place. In offline
    /// mode this only looks in the cache (`cachedSnapshot`).
    ///
    /// - Parameters:
    ///   - repo: `OWNER/NAME`.
    ///   - revision: a branch, tag or commit hash.
    ///   - subfolder: restricts the download to a folder of the repository, or names one file.
    ///   - include: fnmatch-style patterns (`HubGlob`) over paths relative to `subfolder`; empty
    ///     takes the files needed to run a model (see `HubFileSelection`).
    ///   - progress: called with byte counts as files arrive, on a background thread.
    /// - Throws: `HubError`, or `CancellationError` when the task is cancelled (partial files are kept).
    public func download(
        repo: String,
        revision: String = "main",
        subfolder: String? = nil,
        include: [String] = [],
        progress: (@Sendable (HubProgress) -> Void)? = nil
    ) async throws -> URL {
        let selection = HubFileSelection(scope: subfolder, include: include)
        if configuration.offline {
            return try cachedSnapshot(repo: repo, revision: revision, selection: selection)
        }
        let listing = try await listFiles(repo: repo, revision: revision)
        let byPath = Dictionary(listing.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        let selected = selection.select(listing.files.map(\.path)).compactMap { byPath[$0] }
        guard !selected.isEmpty else {
            if let scope = selection.scope, !listing.files.contains(where: { $0.path.hasPrefix(scope + "/") }) {
                throw HubError.fileNotFound(repo: repo, revision: revision, path: scope)
            }
            throw HubError.noMatchingFiles(repo: repo, revision: revision, patterns: include)
        }
        let cache = HubCache(root: configuration.cacheDirectory, repo: repo)
        for (index, file) in selected.enumerated() {
            try Task.checkCancellation()
            try await fetch(file, repo: repo, commit: listing.commit, cache: cache) { done, total in
                progress?(HubProgress(file: file.path, fileIndex: index, fileCount: selected.count,
                                      bytesDone: done, bytesTotal: total))
            }
        }
        try cache.writeRef(revision, commit: listing.commit)
        return cache.snapshot(listing.commit)
    }

    /// The snapshot folder of a revision already in the cache, without touching the network.
    /// - Throws: `HubError.notInCache` when the revision is unknown to the cache or its snapshot
    ///   holds none of the selected files.
    public func cachedSnapshot(
        repo: String, revision: String = "main", subfolder: String? = nil, include: [String] = []
    ) throws -> URL {
        try cachedSnapshot(repo: repo, revision: revision, selection: HubFileSelection(scope: subfolder, include: include))
    }

    // MARK: - Files

    private func cachedSnapshot(repo: String, revision: String, selection: HubFileSelection) throws -> URL {
        try HubModelReference.validate(repo: repo, revision: revision)
        let cache = HubCache(root: configuration.cacheDirectory, repo: repo)
        guard let commit = cache.cachedCommit(for: revision),
              !selection.select(cache.snapshotFiles(commit)).isEmpty else {
            throw HubError.notInCache(repo: repo, revision: revision, cache: cache.repoFolder.path)
        }
        return cache.snapshot(commit)
    }

    /// Puts one file into the snapshot: nothing to do when the snapshot already has it at the
    /// listed size; a new link when its blob is cached (another revision shared it); otherwise a
    /// download of the blob.
    private func fetch(
        _ file: HubRepoFile, repo: String, commit: String, cache: HubCache,
        report: @escaping @Sendable (Int64, Int64) -> Void
    ) async throws {
        let entry = cache.snapshot(commit).appendingPathComponent(file.path)
        if let have = HubCache.fileSize(entry), file.size == nil || have == file.size {
            report(have, have)
            return
        }
        let metadata = try await fileMetadata(repo: repo, commit: commit, path: file.path)
        guard let size = file.size ?? metadata.size else {
            throw HubError.badResponse(url: metadata.location.absoluteString, reason: "no size for \(file.path)")
        }
        // For LFS files the ETag is the SHA-256, so a listing without it can still be checked.
        let sha256 = file.sha256 ?? (Self.isSHA256(metadata.etag) ? metadata.etag : nil)
        let blob = cache.blob(metadata.etag)
        if !cache.blobIsIntact(metadata.etag, size: size, sha256: sha256) {
            try await cache.withBlobLock(metadata.etag) {
                // Another process may have finished it while we waited for the lock.
                guard !cache.blobIsIntact(metadata.etag, size: size, sha256: sha256) else { return }
                cache.removeFile(blob)
                var content = request(metadata.location)
                content.setValue("identity", forHTTPHeaderField: "Accept-Encoding")  // byte offsets must be the file's
                try await HubBlobDownload(
                    cache: cache, etag: metadata.etag, request: content, expectedSize: size, sha256: sha256,
                    file: file.path, maxAttempts: max(1, configuration.maxDownloadAttempts),
                    failure: { response, body in
                        error(for: response, body: body, repo: repo, revision: commit, path: file.path,
                              url: metadata.location)
                    },
                    progress: { report($0, size) }
                ).run()
            }
        }
        try cache.link(path: file.path, commit: commit, etag: metadata.etag)
        report(size, size)
    }

    private struct FileMetadata {
        var etag: String
        var size: Int64?
        /// Where the contents are: the CDN location of a redirect, else the resolve URL.
        var location: URL
    }

    /// `HEAD /REPO/resolve/COMMIT/PATH`, stopping at the Hub's redirect for LFS files, whose
    /// headers (`X-Linked-Etag`, `X-Linked-Size`, `Location`) describe the real file.
    private func fileMetadata(repo: String, commit: String, path: String) async throws -> FileMetadata {
        let encodedPath = path.split(separator: "/").map { Self.encode(String($0)) }.joined(separator: "/")
        let url = try makeURL("\(repo)/resolve/\(commit)/\(encodedPath)")
        var head = request(url)
        head.httpMethod = "HEAD"
        head.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        let sink = HubMemorySink(url: url)
        let response = try await HubHTTP.perform(head, redirects: .stopAtFileMetadata, sink: sink, label: path)
        guard (200..<400).contains(response.statusCode) else {
            throw error(for: response, body: sink.data, repo: repo, revision: commit, path: path, url: url)
        }
        let header = { (name: String) in response.value(forHTTPHeaderField: name) }
        guard let rawETag = header("X-Linked-Etag") ?? header("ETag") else {
            throw HubError.badResponse(url: url.absoluteString, reason: "no ETag for \(path)")
        }
        let etag = Self.normalizeETag(rawETag)
        guard HubCache.isSafeComponent(etag) else {
            throw HubError.badResponse(url: url.absoluteString, reason: "unusable ETag '\(rawETag)'")
        }
        let redirected = (300..<400).contains(response.statusCode)
        var location = response.url ?? url
        if redirected {
            guard let target = header("Location"), let resolved = URL(string: target, relativeTo: url) else {
                throw HubError.badResponse(url: url.absoluteString, reason: "a redirect without a Location")
            }
            location = resolved.absoluteURL
        }
        let sizeText = header("X-Linked-Size") ?? (redirected ? nil : header("Content-Length"))
        return FileMetadata(etag: etag, size: sizeText.flatMap { Int64($0) }, location: location)
    }

    // MARK: - Requests

    private func makeURL(_ pathAndQuery: String) throws -> URL {
        var base = configuration.endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base + "/" + pathAndQuery) else {
            throw HubError.badResponse(url: base, reason: "cannot form a URL with '\(pathAndQuery)'")
        }
        return url
    }

    /// A GET request with our headers; the token only goes to the endpoint's own host.
    private func request(_ url: URL) -> URLRequest {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                                 timeoutInterval: configuration.requestTimeout)
        request.setValue("balcony/0.1 (Swift)", forHTTPHeaderField: "User-Agent")
        if let token = configuration.token, !token.isEmpty,
           url.host == configuration.endpoint.host, url.port == configuration.endpoint.port {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        return request
    }

    private func error(
        for response: HTTPURLResponse, body: Data, repo: String, revision: String, path: String?, url: URL
    ) -> HubError {
        var message = response.value(forHTTPHeaderField: "X-Error-Message")
        if message == nil, let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
            message = json["error"] as? String
        }
        return HubError.from(
            status: response.statusCode, errorCode: response.value(forHTTPHeaderField: "X-Error-Code"),
            serverMessage: message, repo: repo, revision: revision, path: path, url: url,
            endpoint: configuration.endpoint, tokenSent: configuration.token?.isEmpty == false)
    }

    // MARK: - Parsing

    private struct ListingJSON: Decodable {
        struct LFS: Decodable {
            var sha256: String?
            var size: Int64?
        }
        struct Sibling: Decodable {
            var rfilename: String
            var size: Int64?
            var lfs: LFS?
        }
        var sha: String?
        var siblings: [Sibling]?
    }

    static func decodeListing(_ data: Data, url: URL) throws -> HubRepoListing {
        let listing: ListingJSON
        do {
            listing = try JSONDecoder().decode(ListingJSON.self, from: data)
        } catch {
            throw HubError.badResponse(url: url.absoluteString, reason: "the file list is not valid JSON (\(error))")
        }
        guard let commit = listing.sha, HubCache.isSafeComponent(commit) else {
            throw HubError.badResponse(url: url.absoluteString, reason: "the file list has no usable commit hash")
        }
        let files = try (listing.siblings ?? []).map { sibling -> HubRepoFile in
            guard HubCache.isSafeRelativePath(sibling.rfilename) else {
                throw HubError.badResponse(url: url.absoluteString, reason: "unsafe file path '\(sibling.rfilename)'")
            }
            var sha256 = sibling.lfs?.sha256?.lowercased()
            if let digest = sha256, !isSHA256(digest) { sha256 = nil }
            return HubRepoFile(path: sibling.rfilename, size: sibling.lfs?.size ?? sibling.size, sha256: sha256)
        }
        return HubRepoListing(commit: commit, files: files)
    }

    /// `W/"abc"` → `abc`, as huggingface_hub normalizes ETags.
    static func normalizeETag(_ etag: String) -> String {
        var e = etag.trimmingCharacters(in: .whitespaces)
        if e.hasPrefix("W/") { e.removeFirst(2) }
        return e.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy(HubCache.isHexDigit)
    }

    /// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved).
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
