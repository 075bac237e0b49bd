/// A file-name pattern with the semantics of Python's `fnmatch.fnmatchcase`, which is what
/// `huggingface_hub`'s `allow_patterns` (and so `--include`) use:
///
/// - `*` matches any run of characters, `/` included, so `*.json` also matches `sub/config.json`;
/// - `?` matches one character;
/// - `[abc]`, `[a-z]` match one character of the set, `[!abc]` one character outside it; `]` right
///   after `[` or `[!` is a member, `-` first or last is a member, and a `[` without a closing `]`
///   is an ordinary character;
/// - everything else, backslash included, matches itself, case-sensitively.
///
/// As in `huggingface_hub`, a pattern ending in `/` names a folder and matches everything inside.
public struct HubGlob: Sendable, Hashable {
    /// The pattern as written.
    public let pattern: String
    private let tokens: [Token]

    private enum Token: Sendable, Hashable {
        case literal(Unicode.Scalar)
        case anyOne
        case anyRun
        case set([ClosedRange<Unicode.Scalar>], negated: Bool)

        func matches(_ c: Unicode.Scalar) -> Bool {
            switch self {
            case let .literal(l): return l == c
            case .anyOne: return true
            case .anyRun: return false
            case let .set(ranges, negated): return ranges.contains { $0.contains(c) } != negated
            }
        }
    }

    public init(_ pattern: String) {
        self.pattern = pattern
        let full = pattern.hasSuffix("/") ? pattern + "*" : pattern
        tokens = Self.compile(Array(full.unicodeScalars))
    }

    /// Whether `path` (slash-separated, relative) matches the whole pattern.
    public func matches(_ path: String) -> Bool {
        let s = Array(path.unicodeScalars)
        // Greedy match with backtracking to the last `*` only: O(|pattern| × |path|), no recursion.
        var p = 0, i = 0
        var starToken = -1, starInput = 0
        while i < s.count {
            if p < tokens.count, tokens[p] != .anyRun, tokens[p].matches(s[i]) {
                p += 1
                i += 1
            } else if p < tokens.count, tokens[p] == .anyRun {
                starToken = p
                starInput = i
                p += 1
            } else if starToken >= 0 {
                starInput += 1
                i = starInput
                p = starToken + 1
            } else {
                return false
            }
        }
        while p < tokens.count, tokens[p] == .anyRun { p += 1 }
        return p == tokens.count
    }

    private static func compile(_ pat: [Unicode.Scalar]) -> [Token] {
        var tokens: [Token] = []
        var i = 0
        while i < pat.count {
            let c = pat[i]
            i += 1
            switch c {
            case "*":
                if tokens.last != .anyRun { tokens.append(.anyRun) }
            case "?":
                tokens.append(.anyOne)
            case "[":
                // Find the closing bracket the way fnmatch.translate does.
                var j = i
                if j < pat.count, pat[j] == "!" { j += 1 }
                if j < pat.count, pat[j] == "]" { j += 1 }
                while j < pat.count, pat[j] != "]" { j += 1 }
                guard j < pat.count else {
                    tokens.append(.literal("["))
                    continue
                }
                var body = Array(pat[i..<j])
                i = j + 1
                let negated = body.first == "!"
                if negated { body.removeFirst() }
                tokens.append(.set(ranges(in: body), negated: negated))
            default:
                tokens.append(.literal(c))
            }
        }
        return tokens
    }

    /// Members of a bracket expression: `a-z` is a range unless `-` is first or last; a reversed
    /// range such as `z-a` is empty, as in Python.
    private static func ranges(in body: [Unicode.Scalar]) -> [ClosedRange<Unicode.Scalar>] {
        var out: [ClosedRange<Unicode.Scalar>] = []
        var k = 0
        while k < body.count {
            if k + 2 < body.count, body[k + 1] == "-" {
                if body[k] <= body[k + 2] { out.append(body[k]...body[k + 2]) }
                k += 3
            } else {
                out.append(body[k]...body[k])
                k += 1
            }
        }
        return out
    }
}
