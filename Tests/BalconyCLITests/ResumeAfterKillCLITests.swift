import Foundation
import Testing

/// `balcony train` killed with SIGKILL and resumed with `--resume` ends exactly where an
/// uninterrupted run with the same seed ends (issue 16, defect 7), and a folder left between the
/// training state's write and the balcony file's is made consistent on resume (defect 6).
@Suite(.serialized) struct ResumeAfterKillCLITests {
    static let data = CLIRunner.shared.appendingPathComponent("data/tinystories/heldout.txt").path
    static let steps = 12

    /// Large enough batches that a debug build takes a good fraction of a second per step, so the
    /// kill lands inside a step rather than after the run.
    static func arguments(_ out: URL, steps: Int = steps) -> [String] {
        ["train", CLIRunner.stories, "--data", data, "--exits", "1,3", "--steps", "\(steps)", "--batch-size", "4",
         "--seq-len", "128", "--lr", "3e-3", "--seed", "7", "--out", out.path, "--log-every", "1", "--save-every", "4"]
    }

    /// The uninterrupted run everything is compared with.
    static let reference: URL = {
        let dir = try! CLIRunner.temporaryDirectory()
        let r = try! CLIRunner.run(arguments(dir))
        precondition(r.status == 0, r.stderr)
        return dir
    }()

    /// Metrics lines without their timings (tokens/s and the seconds of each phase, the keys ending
    /// in `_s`, differ between any two runs); everything else must be equal to the last bit.
    static func metrics(_ dir: URL) throws -> [String] {
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            var object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            for key in object.keys where key.hasSuffix("_s") { object[key] = nil }  // tokens_per_s, teacher_s, ...
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    static func bytes(_ dir: URL, _ name: String) throws -> Data { try Data(contentsOf: dir.appendingPathComponent(name)) }

    /// Starts the run in `dir` and SIGKILLs it once the metrics show `step` logged: by then the
    /// save at the multiple of 4 below it is on disk and the next step is being computed.
    /// Returns whether it was killed (false: it finished first).
    static func runAndKill(_ dir: URL, afterStep step: Int, resume: Bool) throws -> Bool {
        let p = Process()
        p.executableURL = CLIRunner.executable
        p.arguments = arguments(dir) + (resume ? ["--resume"] : [])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let metrics = dir.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(600)
        while p.isRunning && Date() < deadline {
            if let text = try? String(contentsOf: metrics, encoding: .utf8), text.contains("\"step\":\(step),") {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                return p.terminationReason == .uncaughtSignal
            }
            usleep(5_000)
        }
        p.waitUntilExit()
        return false
    }

    @Test func killedTwiceAndResumedEqualsUninterrupted() throws {
        let reference = Self.reference
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Killed during step 6 (saved at 4), resumed, killed during step 10 (saved at 8), resumed to the end.
        #expect(try Self.runAndKill(dir, afterStep: 5, resume: false), "the first run finished before it could be killed")
        #expect(try Self.runAndKill(dir, afterStep: 9, resume: true), "the resumed run finished before it could be killed")
        let last = try CLIRunner.run(Self.arguments(dir) + ["--resume"])
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stderr.contains("resuming at step 8"), "\(last.stderr)")
        #expect(try Self.bytes(dir, "balconies.safetensors") == Self.bytes(reference, "balconies.safetensors"))
        #expect(try Self.bytes(dir, "training-state.safetensors") == Self.bytes(reference, "training-state.safetensors"))
        let (got, want) = (try Self.metrics(dir), try Self.metrics(reference))
        #expect(got.count == Self.steps + 1)
        #expect(got == want)
    }

    /// A crash after the training state's write and before the balcony file's leaves the balconies
    /// a save behind; `--resume` rewrites them from the state before it goes on.
    @Test func resumeRepairsABalconyFileLeftBehindByACrash() throws {
        let reference = Self.reference
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["training-state.safetensors", "metrics.jsonl"] {
            try FileManager.default.copyItem(at: reference.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        // Stale balconies, as an earlier save left them (here: those of a one-step run).
        let early = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: early) }
        let one = try CLIRunner.run(Self.arguments(early, steps: 1))
        #expect(one.status == 0, "\(one.stderr)")
        try FileManager.default.copyItem(at: early.appendingPathComponent("balconies.safetensors"), to: dir.appendingPathComponent("balconies.safetensors"))
        #expect(try Self.bytes(dir, "balconies.safetensors") != Self.bytes(reference, "balconies.safetensors"))

        let r = try CLIRunner.run(Self.arguments(dir) + ["--resume"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.bytes(dir, "balconies.safetensors") == Self.bytes(reference, "balconies.safetensors"))
    }

    /// Runs of earlier versions saved their state as checkpoint.safetensors; --resume still reads it.
    @Test func resumeReadsTheLegacyCheckpointName() throws {
        let reference = Self.reference
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: reference.appendingPathComponent("training-state.safetensors"),
                                         to: dir.appendingPathComponent("checkpoint.safetensors"))
        try FileManager.default.copyItem(at: reference.appendingPathComponent("metrics.jsonl"), to: dir.appendingPathComponent("metrics.jsonl"))
        let again = try CLIRunner.run(Self.arguments(dir))
        #expect(again.status != 0 && again.stderr.contains("--resume"), "\(again.stderr)")
        let r = try CLIRunner.run(Self.arguments(dir) + ["--resume"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("resuming at step \(Self.steps)"), "\(r.stderr)")
        #expect(try Self.bytes(dir, "balconies.safetensors") == Self.bytes(reference, "balconies.safetensors"))
    }
}
