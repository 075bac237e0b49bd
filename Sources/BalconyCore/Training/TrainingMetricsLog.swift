#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// `metrics.jsonl` of a training run: one JSON object per logged step, appended as training goes;
/// a resumed run first drops lines past its checkpoint so that no step appears twice.
///
/// Every write goes through throwing APIs. Foundation's `FileHandle.write(_:)` on Linux is a
/// `try!` inside, so a full disk used to kill the run with a trap instead of an error; here it is
/// an error naming the file, and the checkpoint already on disk lets the run resume.
public final class TrainingMetricsLog {
    public let url: URL
    private let handle: FileHandle

    /// Opens (creating) `url` for appending; with `keepingStepsUpTo`, first rewrites it keeping only
    /// lines whose step is at most that.
    public init(url: URL, keepingStepsUpTo keep: Int?) throws {
        self.url = url
        if let keep, let text = try? String(contentsOf: url, encoding: .utf8) {
            let kept = text.split(separator: "\n").filter { line in
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let step = obj["step"] as? Int else { return false }
                return step <= keep
            }
            try AtomicFileWriter.write(Data((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8), to: url)
        }
        // open(2) rather than FileManager.createFile, which writes by a rename (and would replace
        // a link the user made); a fresh run starts the file empty.
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | (keep == nil ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else {
            throw ModelFileError.writeFailed(url.path, "cannot open for appending (\(String(cString: strerror(errno))))")
        }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Appends one line.
    /// - Throws: `ModelFileError.writeFailed` when the write fails (a full disk, say).
    public func append<Report: Encodable>(_ report: Report) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var data = try enc.encode(report)
        data.append(0x0A)
        do { try handle.write(contentsOf: data) } catch {
            throw ModelFileError.writeFailed(url.path, "\(error.localizedDescription); the disk may be full. The last checkpoint is intact: free space and continue with --resume")
        }
    }

}
