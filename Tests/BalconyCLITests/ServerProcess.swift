import Foundation

/// A `balcony serve` process on a free loopback port, started as a user would start it.
final class ServerProcess: @unchecked Sendable {
    static let clientScript = CLIRunner.packageRoot.appendingPathComponent("Tests/BalconyCLITests/Fixtures/openai_clients.py").path

    let process = Process()
    let baseURL: String
    private let stderrFile: URL
    private let stdoutPipe = Pipe()

    /// Starts `balcony serve stories260K --port 0 --random-exits 1,3 ARGS` and waits for its address.
    init(_ args: [String] = []) throws {
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-serve-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.executableURL = CLIRunner.executable
        process.arguments = ["serve", CLIRunner.stories, "--port", "0", "--random-exits", "1,3", "--threads", "1"] + args
        var env = ProcessInfo.processInfo.environment
        env["HF_HUB_OFFLINE"] = "1"
        process.environment = env
        process.standardOutput = stdoutPipe
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The first stdout line is "listening on http://127.0.0.1:PORT".
        var line = Data()
        let reader = stdoutPipe.fileHandleForReading
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let byte = reader.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line += byte
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let r = text.range(of: "listening on ") else {
            process.terminate()
            process.waitUntilExit()
            throw ServerError.didNotStart(text + "\n" + ((try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""))
        }
        baseURL = String(text[r.upperBound...])
    }

    enum ServerError: Error { case didNotStart(String) }

    var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits for the process to end; returns its exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: stderrFile)
        return process.terminationStatus
    }

    deinit { if process.isRunning { process.terminate() } }

    struct HTTPResult {
        var status: Int
        var body: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
        var errorMessage: String? { (json?["error"] as? [String: Any])?["message"] as? String }
        var errorParam: String? { (json?["error"] as? [String: Any])?["param"] as? String }
    }

    /// One request through curl; `body` is sent as-is.
    func curl(_ path: String, method: String = "POST", body: String? = nil, headers: [String: String] = ["Content-Type": "application/json"],
              extra: [String] = []) throws -> HTTPResult {
        var args = ["-s", "-N", "-X", method, baseURL + path, "-w", "\n%{http_code}"]
        for (k, v) in headers { args += ["-H", "\(k): \(v)"] }
        var bodyFile: URL?
        if let body {
            let f = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-body-\(UUID().uuidString)")
            try Data(body.utf8).write(to: f)
            bodyFile = f
            args += ["--data-binary", "@\(f.path)"]
        }
        defer { if let f = bodyFile { try? FileManager.default.removeItem(at: f) } }
        let r = try CLIRunner.run(args + extra, program: "curl")
        var lines = r.stdout.components(separatedBy: "\n")
        let status = Int(lines.removeLast()) ?? 0
        return HTTPResult(status: status, body: lines.joined(separator: "\n"))
    }
}
