import Foundation

/// Which exit each generated token uses: "0:K1,64:K2,..." means tokens 0..63 at exit K1, from token
/// 64 on at K2. Switching is exact (see `BalconyModel.forward`).
public struct ExitSchedule: Sendable, Equatable {
    public var entries: [(start: Int, exit: ExitChoice)]

    public static func == (a: ExitSchedule, b: ExitSchedule) -> Bool {
        a.entries.map(\.start) == b.entries.map(\.start) && a.entries.map(\.exit) == b.entries.map(\.exit)
    }

    public init(_ exit: ExitChoice) { entries = [(0, exit)] }

    public init(entries: [(start: Int, exit: ExitChoice)]) throws {
        guard let first = entries.first else { throw ExitScheduleError.empty }
        guard first.start == 0 else { throw ExitScheduleError.mustStartAtZero(first.start) }
        for (a, b) in zip(entries, entries.dropFirst()) where b.start <= a.start {
            throw ExitScheduleError.notIncreasing(a.start, b.start)
        }
        self.entries = entries
    }

    /// Parses "0:3,64:full,128:1".
    public init(parsing text: String) throws {
        var entries: [(Int, ExitChoice)] = []
        for part in text.split(separator: ",") {
            let kv = part.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let start = Int(kv[0]), start >= 0 else { throw ExitScheduleError.malformed(String(part)) }
            entries.append((start, try ExitChoice(parsing: kv[1])))
        }
        try self.init(entries: entries)
    }

    public func exit(forToken index: Int) -> ExitChoice {
        entries.last(where: { $0.start <= index })!.exit
    }

    /// Every exit the schedule uses.
    public var exits: [ExitChoice] { entries.map(\.exit) }

    /// Refuses switch points the generation can never reach.
    public func validate(maxTokens: Int) throws {
        if let last = entries.last, last.start >= max(maxTokens, 1), entries.count > 1 {
            throw ExitScheduleError.beyondGeneration(last.start, maxTokens: maxTokens)
        }
    }
}

public enum ExitScheduleError: LocalizedError, Equatable {
    case empty
    case malformed(String)
    case mustStartAtZero(Int)
    case notIncreasing(Int, Int)
    case beyondGeneration(Int, maxTokens: Int)

    public var errorDescription: String? {
        switch self {
        case .empty: return "the exit schedule is empty; write it as TOKEN:EXIT pairs, e.g. 0:2,64:full"
        case let .malformed(p): return "'\(p)' in the exit schedule is not TOKEN:EXIT (e.g. 0:2 or 64:full)"
        case let .mustStartAtZero(s): return "the exit schedule must start at token 0, not \(s)"
        case let .notIncreasing(a, b): return "exit schedule token indices must increase (\(a) then \(b))"
        case let .beyondGeneration(s, max):
            return "the exit schedule switches at token \(s) but at most \(max) tokens are generated; lower the index or raise --max-tokens"
        }
    }
}
