#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
@testable import BalconyCore

/// A running `scripts/fake_hub.py` serving a temporary repository, plus an empty cache folder for
/// the client under test. Call `stop()` when done (tests use `defer`).
final class FakeHub: @unchecked Sendable {
    static let repo = "test-owner/tiny-model"

    let folder: URL
    let repoFolder: URL
    let cacheFolder: URL
    let logFile: URL
    let port: Int
    private let process: Process

    /// The repository the tests serve: a config, a tokenizer, a ~1 MB safetensors file (served as
    /// LFS, so through a cross-host redirect), a PyTorch .bin and a GGUF that the default rule
    /// must skip, a llama2.c-style subfolder and a nested JSON the default rule must skip too.
    static let files: [String: [UInt8]] = [
        "config.json": Array(#"{"model_type": "llama", "hidden_size": 64}"#.utf8),
        "tokenizer.json": Array(#"{"model": {"type": "BPE"}}"#.utf8),
        "model.safetensors": pseudoRandomBytes(count: 1_048_576 + 123, seed: 1),
        "pytorch_model.bin": pseudoRandomBytes(count: 2_000, seed: 2),
        "model-Q8_0.gguf": pseudoRandomBytes(count: 3_000, seed: 3),
        "stories/stories.bin": pseudoRandomBytes(count: 150_000, seed: 4),
        "stories/tok512.bin": pseudoRandomBytes(count: 700, seed: 5),
        "original/params.json": Array(#"{"dim": 64}"#.utf8),
    ]

    /// A served file's bytes, size and SHA-256. Tests compare through these rather than through
    /// `files[...]` so that a failed expectation prints "N bytes", not a million array elements.
    static func contents(_ path: String) -> Data { Data(files[path] ?? []) }
    static func size(_ path: String) -> Int64 { Int64(files[path]?.count ?? -1) }
    static func sha256(_ path: String) -> String { SHA256.hash(files[path] ?? []).hex }

    var endpoint: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// A client configuration for this server and the private cache; nothing from the environment.
    func configuration(token: String? = nil, offline: Bool = false) -> HubConfiguration {
        HubConfiguration(endpoint: endpoint, cacheDirectory: cacheFolder, token: token, offline: offline,
                         requestTimeout: 10, maxDownloadAttempts: 3)
    }

    func client(token: String? = nil, offline: Bool = false) -> HubClient {
        HubClient(configuration: configuration(token: token, offline: offline))
    }

    /// Starts the server. `flags` are fake_hub.py's fault options, e.g. `["--ignore-range"]`.
    init(flags: [String] = []) throws {
        let fm = FileManager.default
        let folder = fm.temporaryDirectory.appendingPathComponent("balcony-hub-\(UUID().uuidString)")
        self.folder = folder
        repoFolder = folder.appendingPathComponent("repo")
        cacheFolder = folder.appendingPathComponent("cache")
        logFile = folder.appendingPathComponent("requests.log")
        var started = false
        defer { if !started { try? fm.removeItem(at: folder) } }
        for (path, bytes) in Self.files {
            let url = repoFolder.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
        try fm.createDirectory(at: cacheFolder, withIntermediateDirectories: true)

        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/fake_hub.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, repoFolder.path, "--repo", Self.repo, "--log", logFile.path] + flags
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()

        // The first stdout line is the port, printed once the server listens.
        var output = Data()
        while !output.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
        }
        guard let line = String(data: output, encoding: .utf8)?.split(separator: "\n").first,
              let port = Int(line.trimmingCharacters(in: .whitespaces)) else {
            process.terminate()
            throw FakeHubError.didNotStart(String(decoding: output, as: UTF8.self))
        }
        self.port = port
        started = true
    }

    /// Ends the server (SIGTERM, then SIGKILL after a second) and deletes the temporary folder.
    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(1)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: folder)
    }

    /// Every request so far, one line each: `METHOD PATH range=RANGE auth=yes|no`.
    func requests() -> [String] {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Forgets the requests logged so far.
    func clearLog() throws {
        try Data().write(to: logFile)
    }

    /// Requests that carried file content (GET to resolve or the CDN).
    func contentRequests() -> [String] {
        requests().filter { $0.hasPrefix("GET ") && !$0.hasPrefix("GET /api/") }
    }

    // MARK: - Cache inspection

    var repoCache: URL { cacheFolder.appendingPathComponent("models--test-owner--tiny-model") }

    static func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }
}

enum FakeHubError: Error, CustomStringConvertible {
    case didNotStart(String)

    var description: String {
        switch self {
        case let .didNotStart(output):
            return "scripts/fake_hub.py did not start (is python3 on PATH?); its output: \(output)"
        }
    }
}
