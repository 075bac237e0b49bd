import Foundation

/// Runs the built `balcony` executable as a user would and captures what it prints.
struct CLIRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Package root, from this file's location.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let shared = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    static let stories = shared.appendingPathComponent("models/stories260K/stories260K.bin").path

    /// The executable next to the test bundle (SwiftPM builds both into the same folder).
    static let executable: URL = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("balcony")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        for dir in [".build/debug", ".build/release"] {
            let u = packageRoot.appendingPathComponent(dir).appendingPathComponent("balcony")
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return beside
    }()

    /// Runs `balcony ARGS`, or with `program` another program found on the PATH (`python3`, `curl`).
    static func run(_ args: [String], environment: [String: String] = [:], stdin: String? = nil, program: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = program == nil ? executable : URL(fileURLWithPath: "/usr/bin/env")
        let args = program.map { [$0] + args } ?? args
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["HF_HUB_OFFLINE"] = "1"  // tests never touch the network
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes concurrently-enough: outputs here are small, but stdout may exceed a pipe
        // buffer, so drain it before waiting.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func temporaryDirectory() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

/// The expected values of scripts/make_stories_fixtures.py.
struct StoriesFixture: Decodable {
    struct Prompt: Decodable {
        var prompt: String
        var prompt_ids: [Int]
        var ids: [Int]
        var text: String
    }
    struct Score: Decodable {
        var text: String
        var ids: [Int]
        var nll: [Double]
        var mean_nll: Double
        var perplexity: Double
    }
    var greedy_bos_ids: [Int]
    var prompts: [Prompt]
    var score: Score

    static func load() throws -> StoriesFixture {
        let url = CLIRunner.packageRoot.appendingPathComponent("Tests/BalconyCLITests/Fixtures/stories260K.json")
        return try JSONDecoder().decode(StoriesFixture.self, from: Data(contentsOf: url))
    }
}
