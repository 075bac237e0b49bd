import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
@testable import BalconyCore

/// Downloads against `scripts/fake_hub.py` on 127.0.0.1; nothing here touches the network.
@Suite struct HubDownloadTests {
    let defaultFiles = ["config.json", "model.safetensors", "tokenizer.json"]

    @Test func fullDownloadWithCacheLayout() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let progress = ProgressRecorder()
        let snapshot = try await hub.client().download(repo: FakeHub.repo, progress: { progress.add($0) })

        // The default rule: top-level JSON, safetensors and no .bin (safetensors exist), no .gguf.
        #expect(snapshotFiles(snapshot) == defaultFiles)
        try expectContents(snapshot, defaultFiles)

        // refs/main names the commit, which names the snapshot folder.
        let commit = try String(contentsOf: hub.repoCache.appendingPathComponent("refs/main"), encoding: .utf8)
        #expect(snapshot.standardizedFileURL == hub.repoCache.appendingPathComponent("snapshots/\(commit)").standardizedFileURL)

        // Snapshot entries are relative symlinks into blobs/, named by ETag: the SHA-256 for LFS files.
        let fm = FileManager.default
        let modelLink = try fm.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("model.safetensors").path)
        #expect(modelLink == "../../blobs/" + FakeHub.sha256("model.safetensors"))
        let configLink = try fm.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("config.json").path)
        #expect(configLink.hasPrefix("../../blobs/"))
        let blobs = try fm.contentsOfDirectory(atPath: hub.repoCache.appendingPathComponent("blobs").path)
        #expect(blobs.count == defaultFiles.count)
        #expect(!blobs.contains { $0.hasSuffix(".incomplete") })

        // One listing; one HEAD per file, stopping at the Hub's redirect for the LFS file (whose
        // metadata is on the redirect); one GET per file, the LFS one straight to the CDN.
        let requests = hub.requests()
        #expect(requests.filter { $0.hasPrefix("GET /api/") }.count == 1)
        #expect(requests.filter { $0.hasPrefix("HEAD /\(FakeHub.repo)/resolve/") }.count == defaultFiles.count)
        #expect(!requests.contains { $0.hasPrefix("HEAD /cdn/") })
        #expect(hub.contentRequests().count == defaultFiles.count)
        #expect(hub.contentRequests().filter { $0.hasPrefix("GET /cdn/") }.count == 1)

        // Progress ended at each file's full size.
        for path in defaultFiles {
            let last = progress.last(path)
            #expect(last?.bytesDone == FakeHub.size(path))
            #expect(last?.bytesTotal == FakeHub.size(path))
            #expect(last?.fileCount == defaultFiles.count)
        }
    }

    @Test func secondDownloadFetchesNothing() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let first = try await hub.client().download(repo: FakeHub.repo)
        try hub.clearLog()
        let second = try await hub.client().download(repo: FakeHub.repo)
        #expect(first == second)
        // Only the listing: no HEAD, no content.
        #expect(hub.requests().count == 1)
        #expect(hub.requests().first?.hasPrefix("GET /api/models/\(FakeHub.repo)/revision/main") == true)
    }

    @Test func cachedBlobIsLinkedNotDownloaded() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let snapshot = try await hub.client().download(repo: FakeHub.repo)
        try FileManager.default.removeItem(at: snapshot.appendingPathComponent("model.safetensors"))
        try hub.clearLog()
        _ = try await hub.client().download(repo: FakeHub.repo)
        #expect(hub.requests().contains { $0.hasPrefix("HEAD /\(FakeHub.repo)/resolve/") })
        #expect(hub.contentRequests().isEmpty)
        try expectContents(snapshot, ["model.safetensors"])
    }

    /// A blob of the listed size is not trusted on its size: it is re-hashed before it is linked,
    /// and a damaged one is downloaded again (issue 16, defect 6).
    @Test func cachedBlobOfTheRightSizeButWrongContentsIsDownloadedAgain() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let snapshot = try await hub.client().download(repo: FakeHub.repo)
        let link = snapshot.appendingPathComponent("model.safetensors")
        let blob = hub.repoCache.appendingPathComponent("blobs/" + FakeHub.sha256("model.safetensors"))
        var damaged = FakeHub.files["model.safetensors"]!
        damaged[damaged.count / 2] ^= 0xFF
        try Data(damaged).write(to: blob)
        try FileManager.default.removeItem(at: link)
        try hub.clearLog()
        _ = try await hub.client().download(repo: FakeHub.repo)
        #expect(hub.contentRequests().count == 1, "\(hub.contentRequests())")
        try expectContents(snapshot, ["model.safetensors"])
    }

    @Test func resumesAfterDroppedConnection() async throws {
        let hub = try FakeHub(flags: ["--drop-after", "model.safetensors:300000"])
        defer { hub.stop() }
        let snapshot = try await hub.client().download(repo: FakeHub.repo, include: ["model.safetensors"])
        let transfers = hub.contentRequests().filter { $0.contains("/cdn/") }
        #expect(transfers.count == 2)
        #expect(transfers.last?.contains("range=bytes=300000-") == true)
        try expectContents(snapshot, ["model.safetensors"])
    }

    @Test func interruptedDownloadResumesOnTheNextRun() async throws {
        let hub = try FakeHub(flags: ["--drop-after", "model.safetensors:1000"])
        defer { hub.stop() }
        var configuration = hub.configuration()
        configuration.maxDownloadAttempts = 1
        let client = HubClient(configuration: configuration)
        let error = await #expect(throws: HubError.self) {
            try await client.download(repo: FakeHub.repo, include: ["model.safetensors"])
        }
        #expect(error?.localizedDescription.contains("run the command again to resume") == true)
        #expect(HubCache.fileSize(partialURL(hub)) == 1000)

        let snapshot = try await client.download(repo: FakeHub.repo, include: ["model.safetensors"])
        #expect(hub.contentRequests().last?.contains("range=bytes=1000-") == true)
        try expectContents(snapshot, ["model.safetensors"])
    }

    @Test func resumesPartialFileFromEarlierRun() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let bytes = FakeHub.files["model.safetensors"]!
        try writePartial(hub, Array(bytes[..<400_000]))
        let snapshot = try await hub.client().download(repo: FakeHub.repo, include: ["model.safetensors"])
        #expect(hub.contentRequests().count == 1)
        #expect(hub.contentRequests().first?.contains("range=bytes=400000-") == true)
        try expectContents(snapshot, ["model.safetensors"])
        #expect(!FileManager.default.fileExists(atPath: partialURL(hub).path))
    }

    @Test func serverIgnoringRangeRestartsTheFile() async throws {
        let hub = try FakeHub(flags: ["--ignore-range"])
        defer { hub.stop() }
        // Garbage in the partial file: a 200 answer to the Range request must replace it, not follow it.
        try writePartial(hub, [UInt8](repeating: 0xEE, count: 400_000))
        let snapshot = try await hub.client().download(repo: FakeHub.repo, include: ["model.safetensors"])
        #expect(hub.contentRequests().first?.contains("range=bytes=400000-") == true)
        try expectContents(snapshot, ["model.safetensors"])
    }

    @Test func checksumMismatchIsAnErrorAndLeavesNothing() async throws {
        let hub = try FakeHub(flags: ["--wrong-sha", "model.safetensors"])
        defer { hub.stop() }
        let error = await #expect(throws: HubError.self) {
            try await hub.client().download(repo: FakeHub.repo)
        }
        guard case let .checksumMismatch(file, expected, actual)? = error else {
            Issue.record("expected a checksum mismatch, got \(String(describing: error))")
            return
        }
        #expect(file == "model.safetensors")
        #expect(actual == FakeHub.sha256("model.safetensors"))
        #expect(expected != actual)
        #expect(error?.localizedDescription.contains("corrupt") == true)

        let blobs = hub.repoCache.appendingPathComponent("blobs")
        #expect(!FileManager.default.fileExists(atPath: blobs.appendingPathComponent(expected).path))
        #expect(!FileManager.default.fileExists(atPath: blobs.appendingPathComponent(expected + ".incomplete").path))
        let snapshots = hub.repoCache.appendingPathComponent("snapshots")
        let entries = (try? FileManager.default.subpathsOfDirectory(atPath: snapshots.path)) ?? []
        #expect(!entries.contains { $0.hasSuffix("model.safetensors") })
        #expect(!FileManager.default.fileExists(atPath: hub.repoCache.appendingPathComponent("refs/main").path))
    }

    @Test func includePatternsAndSubfolders() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let client = hub.client()
        let snapshot = try await client.download(repo: FakeHub.repo, include: ["*.gguf", "stories/*"])
        #expect(snapshotFiles(snapshot) == ["model-Q8_0.gguf", "stories/stories.bin", "stories/tok512.bin"])
        try expectContents(snapshot, ["model-Q8_0.gguf", "stories/stories.bin", "stories/tok512.bin"])
        let nested = try FileManager.default.destinationOfSymbolicLink(
            atPath: snapshot.appendingPathComponent("stories/stories.bin").path)
        #expect(nested == "../../../blobs/" + FakeHub.sha256("stories/stories.bin"))

        // The default rule inside a subfolder without safetensors takes its .bin files.
        let scoped = try await client.download(repo: FakeHub.repo, subfolder: "stories")
        #expect(scoped == snapshot)

        await #expect(throws: HubError.noMatchingFiles(repo: FakeHub.repo, revision: "main", patterns: ["*.onnx"])) {
            try await client.download(repo: FakeHub.repo, include: ["*.onnx"])
        }
    }

    @Test func referencesResolveToFilesOrFolders() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let client = hub.client()
        let folder = try await HubModelReference.resolve("hf:\(FakeHub.repo)", client: client)
        #expect(snapshotFiles(folder) == defaultFiles)

        // A subfolder with one model .bin (tok512.bin is a tokenizer) resolves to that file.
        let stories = try await HubModelReference.resolve("hf:\(FakeHub.repo)/stories", client: client)
        #expect(stories.lastPathComponent == "stories.bin")
        #expect(try Data(contentsOf: stories) == FakeHub.contents("stories/stories.bin"))

        // A named file resolves to itself, even a GGUF that the default rule skips.
        let gguf = try await HubModelReference.resolve("hf:\(FakeHub.repo)/model-Q8_0.gguf@main", client: client)
        #expect(try Data(contentsOf: gguf) == FakeHub.contents("model-Q8_0.gguf"))

        await #expect(throws: HubError.fileNotFound(repo: FakeHub.repo, revision: "main", path: "missing.gguf")) {
            try await HubModelReference.resolve("hf:\(FakeHub.repo)/missing.gguf", client: client)
        }

        // The blocking wrapper, from a plain thread as synchronous callers would use it.
        let reference = try HubModelReference(parsing: "hf:\(FakeHub.repo)/stories")
        let blocking: Result<URL, Error> = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Result { try reference.resolveBlocking(using: client) })
            }.start()
        }
        #expect(try blocking.get() == stories)
    }

    @Test func missingRepositoryAndRevision() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let error = await #expect(throws: HubError.self) {
            try await hub.client().download(repo: "test-owner/no-such-model")
        }
        #expect(error == .repositoryNotFound(repo: "test-owner/no-such-model", endpoint: hub.endpoint.absoluteString))
        #expect(error?.localizedDescription.contains("check the name, or set HF_TOKEN for gated/private repos") == true)

        await #expect(throws: HubError.revisionNotFound(repo: FakeHub.repo, revision: "v9")) {
            try await hub.client().download(repo: FakeHub.repo, revision: "v9")
        }
    }

    @Test func gatedRepositoryNeedsToken() async throws {
        let hub = try FakeHub(flags: ["--token-required", "hf_secret"])
        defer { hub.stop() }
        let anonymous = await #expect(throws: HubError.self) {
            try await hub.client().download(repo: FakeHub.repo)
        }
        guard case let .accessDenied(_, status, tokenSent, _)? = anonymous else {
            Issue.record("expected access denied, got \(String(describing: anonymous))")
            return
        }
        #expect(status == 401 && !tokenSent)
        #expect(anonymous?.localizedDescription.contains("set HF_TOKEN") == true)

        let wrongToken = await #expect(throws: HubError.self) {
            try await hub.client(token: "hf_wrong").download(repo: FakeHub.repo)
        }
        #expect(wrongToken?.localizedDescription.contains("the token in HF_TOKEN does not grant access") == true)

        // With the token: the Hub sees it; the CDN (another host, which rejects it) does not.
        try hub.clearLog()
        let snapshot = try await hub.client(token: "hf_secret").download(repo: FakeHub.repo)
        try expectContents(snapshot, defaultFiles)
        let requests = hub.requests()
        #expect(requests.filter { !$0.contains("/cdn/") }.allSatisfy { $0.hasSuffix("auth=yes") })
        #expect(requests.contains { $0.contains("/cdn/") })
        #expect(requests.filter { $0.contains("/cdn/") }.allSatisfy { $0.hasSuffix("auth=no") })
    }

    @Test func offlineModeUsesTheCacheOnly() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let offline = hub.client(offline: true)
        let missing = await #expect(throws: HubError.self) {
            try await offline.download(repo: FakeHub.repo)
        }
        #expect(missing?.localizedDescription.contains("HF_HUB_OFFLINE") == true)
        guard case .notInCache? = missing else {
            Issue.record("expected notInCache, got \(String(describing: missing))")
            return
        }

        let online = try await hub.client().download(repo: FakeHub.repo)
        _ = try await hub.client().download(repo: FakeHub.repo, subfolder: "stories")
        try hub.clearLog()
        #expect(try await offline.download(repo: FakeHub.repo) == online)
        let stories = try await HubModelReference.resolve("hf:\(FakeHub.repo)/stories", client: offline)
        #expect(stories.lastPathComponent == "stories.bin")
        // A commit hash resolves too.
        #expect(try await offline.download(repo: FakeHub.repo, revision: online.lastPathComponent) == online)
        #expect(hub.requests().isEmpty)

        // Files never downloaded are not in the cache.
        await #expect(throws: HubError.self) {
            try await offline.download(repo: FakeHub.repo, include: ["*.gguf"])
        }
    }

    @Test func unreachableEndpointSaysWhatToDo() async throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-hub-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        // Port 1 on the loopback interface: nothing listens, the connection is refused at once.
        let client = HubClient(configuration: HubConfiguration(
            endpoint: URL(string: "http://127.0.0.1:1")!, cacheDirectory: cache, requestTimeout: 5))
        let error = await #expect(throws: HubError.self) {
            try await client.download(repo: FakeHub.repo)
        }
        guard case .networkUnreachable? = error else {
            Issue.record("expected networkUnreachable, got \(String(describing: error))")
            return
        }
        #expect(error?.localizedDescription.contains("use HF_HUB_OFFLINE=1 with a populated cache, or pass a local path") == true)
    }

    /// The exchange layer on its own: a followed redirect to another host drops the token (the
    /// fake CDN answers 400 to requests that carry one), and a metadata request stops at the
    /// Hub's redirect.
    @Test func redirectsAcrossHostsDropTheToken() async throws {
        let hub = try FakeHub()
        defer { hub.stop() }
        let url = hub.endpoint.appendingPathComponent("\(FakeHub.repo)/resolve/main/model.safetensors")
        var request = URLRequest(url: url)
        request.setValue("Bearer hf_anything", forHTTPHeaderField: "Authorization")

        let body = HubMemorySink(url: url)
        let response = try await HubHTTP.perform(request, redirects: .follow, sink: body, label: "model.safetensors")
        #expect(response.statusCode == 200)
        #expect(body.data == FakeHub.contents("model.safetensors"))
        #expect(hub.requests().last?.hasPrefix("GET /cdn/") == true)
        #expect(hub.requests().last?.hasSuffix("auth=no") == true)

        request.httpMethod = "HEAD"
        let head = try await HubHTTP.perform(request, redirects: .stopAtFileMetadata, sink: HubMemorySink(url: url),
                                             label: "model.safetensors")
        #expect(head.statusCode == 302)
        #expect(head.value(forHTTPHeaderField: "X-Linked-Size") == String(FakeHub.size("model.safetensors")))
        #expect(hub.requests().last?.hasPrefix("HEAD /\(FakeHub.repo)/resolve/") == true)
    }

    // MARK: - Helpers

    /// Repository paths of the regular files (through symlinks) under a snapshot folder, sorted.
    func snapshotFiles(_ snapshot: URL) -> [String] {
        let all = FileManager.default.subpaths(atPath: snapshot.path) ?? []
        return all.filter { HubCache.fileSize(snapshot.appendingPathComponent($0)) != nil }.sorted()
    }

    func expectContents(_ snapshot: URL, _ paths: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for path in paths {
            let data = try Data(contentsOf: snapshot.appendingPathComponent(path))
            #expect(data == FakeHub.contents(path), "contents of \(path)", sourceLocation: sourceLocation)
        }
    }

    func partialURL(_ hub: FakeHub) -> URL {
        let etag = FakeHub.sha256("model.safetensors")
        return hub.repoCache.appendingPathComponent("blobs/\(etag).incomplete")
    }

    func writePartial(_ hub: FakeHub, _ bytes: [UInt8]) throws {
        let url = partialURL(hub)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }
}

/// Collects progress reports, which arrive on URLSession's delegate threads.
final class ProgressRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var lastByFile: [String: HubProgress] = [:]

    func add(_ progress: HubProgress) {
        lock.lock()
        lastByFile[progress.file] = progress
        lock.unlock()
    }

    func last(_ file: String) -> HubProgress? {
        lock.lock()
        defer { lock.unlock() }
        return lastByFile[file]
    }
}
