/// Splits a template into text and tags, and tags into tokens.
///
/// Whitespace rules are those Hugging Face uses to compile chat templates (transformers'
/// `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`): the first newline after a
/// block or comment tag is dropped, spaces and tabs before a block or comment tag that starts a line
/// are dropped, and `{%-`/`-%}` (also on `{{ }}` and `{# #}`) strip all whitespace on that side.
/// `{%+` and `+%}` turn the automatic stripping off for one side.
struct JinjaLexer {
    enum Token: Equatable {
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        case op(String)
    }

    enum Segment {
        case text(String)
        /// `{{ ... }}`
        case output([Token], line: Int)
        /// `{% ... %}`
        case statement([Token], line: Int)
    }

    /// - Throws: `JinjaError.syntax` for an unterminated tag, string or bracket.
    static func segments(_ source: String) throws -> [Segment] {
        let s = Array(source.unicodeScalars)
        var out: [Segment] = []
        var text = String.UnicodeScalarView()
        var i = 0
        var line = 1
        // Set by a tag that strips whitespace after it (`-%}`) or drops its first newline (trim_blocks).
        var stripNext = false, trimNewline = false

        func at(_ k: Int, _ lit: String) -> Bool {
            var k = k
            for c in lit.unicodeScalars {
                guard k < s.count, s[k] == c else { return false }
                k += 1
            }
            return true
        }
        func flushText() {
            if !text.isEmpty { out.append(.text(String(text))) }
            text = String.UnicodeScalarView()
        }

        while i < s.count {
            let isTag = s[i] == "{" && i + 1 < s.count && (s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#")
            if !isTag {
                if stripNext {
                    if s[i].properties.isWhitespace { if s[i] == "\n" { line += 1 }; i += 1; continue }
                    stripNext = false
                }
                if trimNewline {
                    trimNewline = false
                    if s[i] == "\n" { line += 1; i += 1; continue }
                    if s[i] == "\r" && i + 1 < s.count && s[i + 1] == "\n" { line += 1; i += 2; continue }
                }
                if s[i] == "\n" { line += 1 }
                text.append(s[i])
                i += 1
                continue
            }
            stripNext = false
            trimNewline = false
            let kind = s[i + 1]
            let tagLine = line
            var j = i + 2
            let block = kind == "%" || kind == "#"
            if j < s.count && s[j] == "-" {
                // `{%-`: strip all whitespace before the tag.
                while let last = text.last, last.properties.isWhitespace { text.removeLast() }
                j += 1
            } else if j < s.count && s[j] == "+" {
                j += 1
            } else if block {
                // lstrip_blocks: spaces and tabs between the line start and the tag go. The line start
                // is judged on the source (a newline dropped by trim_blocks still starts a line).
                var k = i - 1
                while k >= 0 && (s[k] == " " || s[k] == "\t") { k -= 1 }
                if k < 0 || s[k] == "\n" {
                    var n = i - 1 - k
                    while n > 0, let last = text.last, last == " " || last == "\t" { text.removeLast(); n -= 1 }
                }
            }
            flushText()
            if kind == "#" {
                // A comment: through `#}`; `-#}` strips after.
                var k = j
                while k + 1 < s.count && !(s[k] == "#" && s[k + 1] == "}") {
                    if s[k] == "\n" { line += 1 }
                    k += 1
                }
                guard k + 1 < s.count else { throw JinjaError.syntax("unterminated comment '{#'", line: tagLine) }
                if s[k - 1] == "-" && k - 1 >= j { stripNext = true } else { trimNewline = true }
                i = k + 2
                continue
            }
            let close: String = kind == "{" ? "}}" : "%}"
            var tokens: [Token] = []
            var brackets: [Unicode.Scalar] = []
            var closed = false
            while j < s.count {
                let c = s[j]
                if c == "\n" { line += 1 }
                if c.properties.isWhitespace { j += 1; continue }
                if brackets.isEmpty {
                    if at(j, "-" + close) { stripNext = true; j += 3; closed = true; break }
                    if at(j, "+" + close) { j += 3; closed = true; break }
                    if at(j, close) { j += 2; closed = true; if block { trimNewline = true }; break }
                }
                let (tok, next) = try token(s, j, line: line)
                if case .op(let o) = tok {
                    if o == "(" || o == "[" || o == "{" { brackets.append(o.unicodeScalars.first!) }
                    if o == ")" || o == "]" || o == "}" {
                        let want: Unicode.Scalar = o == ")" ? "(" : o == "]" ? "[" : "{"
                        guard brackets.last == want else { throw JinjaError.syntax("unbalanced '\(o)'", line: line) }
                        brackets.removeLast()
                    }
                }
                tokens.append(tok)
                j = next
            }
            guard closed else {
                throw JinjaError.syntax("unterminated '{\(kind)' (no '\(close)' before the end of the template)", line: tagLine)
            }
            out.append(kind == "{" ? .output(tokens, line: tagLine) : .statement(tokens, line: tagLine))
            i = j
        }
        flushText()
        return out
    }

    private static let twoCharOps: Set<String> = ["==", "!=", "<=", ">=", "//", "**"]

    /// One token at `i` (not whitespace); returns it and the index after it.
    private static func token(_ s: [Unicode.Scalar], _ i: Int, line: Int) throws -> (Token, Int) {
        let c = s[i]
        if c == "'" || c == "\"" {
            var j = i + 1
            var v = String.UnicodeScalarView()
            while j < s.count && s[j] != c {
                if s[j] == "\\" && j + 1 < s.count {
                    j += 1
                    switch s[j] {
                    case "n": v.append("\n")
                    case "t": v.append("\t")
                    case "r": v.append("\r")
                    case "\\": v.append("\\")
                    case "'": v.append("'")
                    case "\"": v.append("\"")
                    default: v.append("\\"); v.append(s[j])
                    }
                } else {
                    v.append(s[j])
                }
                j += 1
            }
            guard j < s.count else { throw JinjaError.syntax("unterminated string literal", line: line) }
            return (.string(String(v)), j + 1)
        }
        if c.properties.numericType != nil && c.isASCII {
            var j = i
            while j < s.count && (s[j].isASCII && s[j].properties.numericType != nil || s[j] == "_") { j += 1 }
            var isDouble = false
            if j + 1 < s.count && s[j] == "." && s[j + 1].isASCII && s[j + 1].properties.numericType != nil {
                isDouble = true
                j += 1
                while j < s.count && s[j].isASCII && s[j].properties.numericType != nil { j += 1 }
            }
            let text = String(String.UnicodeScalarView(s[i..<j])).replacingOccurrences(of: "_", with: "")
            if isDouble, let d = Double(text) { return (.double(d), j) }
            guard let n = Int(text) else { throw JinjaError.syntax("number '\(text)' is too large", line: line) }
            return (.int(n), j)
        }
        if c == "_" || c.properties.isAlphabetic {
            var j = i
            while j < s.count && (s[j] == "_" || s[j].properties.isAlphabetic || (s[j].isASCII && s[j].properties.numericType != nil)) {
                j += 1
            }
            return (.name(String(String.UnicodeScalarView(s[i..<j]))), j)
        }
        if i + 1 < s.count {
            let two = String(String.UnicodeScalarView(s[i...(i + 1)]))
            if twoCharOps.contains(two) { return (.op(two), i + 2) }
        }
        if "+-*/%~<>=()[]{}.,:|!".unicodeScalars.contains(c) { return (.op(String(c)), i + 1) }
        throw JinjaError.syntax("unexpected character '\(c)'", line: line)
    }
}
