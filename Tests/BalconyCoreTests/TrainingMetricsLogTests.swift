import Foundation
import Testing
@testable import BalconyCore

/// `metrics.jsonl` writes on a full disk (issue 16, defect 6): Foundation's `FileHandle.write(_:)`
/// traps on Linux when the write fails; the log must throw an error naming the file instead.
@Suite struct TrainingMetricsLogTests {
    struct Line: Encodable { var step: Int }

    @Test func fullDiskIsAnErrorNotATrap() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }  // Linux's always-full device
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("metrics.jsonl")
        try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: "/dev/full")
        let log = try TrainingMetricsLog(url: url, keepingStepsUpTo: nil)
        do {
            try log.append(Line(step: 1))
            Issue.record("a write to a full disk succeeded")
        } catch {
            let message = error.localizedDescription
            #expect(message.contains("metrics.jsonl") && message.contains("--resume"), "\(message)")
        }
    }

    @Test func resumedLogKeepsOnlyStepsUpToTheCheckpoint() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("metrics.jsonl")
        let first = try TrainingMetricsLog(url: url, keepingStepsUpTo: nil)
        for s in [0, 2, 4, 6] { try first.append(Line(step: s)) }
        let resumed = try TrainingMetricsLog(url: url, keepingStepsUpTo: 4)
        try resumed.append(Line(step: 6))
        #expect(try String(contentsOf: url, encoding: .utf8) == "{\"step\":0}\n{\"step\":2}\n{\"step\":4}\n{\"step\":6}\n")
    }
}
