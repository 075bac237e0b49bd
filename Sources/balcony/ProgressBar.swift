import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress on stderr: a live bar redrawn in place on a terminal, plain periodic lines in logs.
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let live = isatty(2) != 0
    private var lastPlain = Date.distantPast
    private var lastLive = Date.distantPast
    private let start = Date()
    private var drew = false

    /// Reports `done` of `total` units of `label`; `force` prints even if rate-limited.
    func update(_ label: String, done: Int64, total: Int64, unit: Unit = .bytes, force: Bool = false) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 && total > done ? Double(total - done) / rate : 0
        let figures = "\(unit.format(done))/\(unit.format(total)) \(unit.format(Int64(rate)))/s eta \(Int(eta))s"
        if live {
            guard force || now.timeIntervalSince(lastLive) > 0.1 else { return }
            lastLive = now
            drew = true
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write("\r\u{1B}[2K\(label) \(bar) \(Int(fraction * 100))% \(figures)".data(using: .utf8)!)
        } else {
            guard force || now.timeIntervalSince(lastPlain) > 5 else { return }
            lastPlain = now
            printError("\(label): \(Int(fraction * 100))% \(figures)")
        }
    }

    /// Ends the live line.
    func finish() {
        lock.lock(); defer { lock.unlock() }
        if live && drew { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }

    enum Unit {
        case bytes, count
        func format(_ n: Int64) -> String {
            switch self {
            case .bytes: return formatBytes(Int(n))
            case .count: return "\(n)"
            }
        }
    }
}
