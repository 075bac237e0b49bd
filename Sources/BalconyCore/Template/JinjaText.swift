/// Python's string operations with Python's exact rules (what `str.strip`, `str.split`,
/// `str.title` do differs in detail from Foundation's look-alikes).
enum JinjaText {
    /// Python's `str.isspace` characters for `strip()`/`split()` without arguments.
    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        c.properties.isWhitespace || (0x1C...0x1F).contains(c.value)
    }

    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func drop(_ c: Unicode.Scalar) -> Bool { set?.contains(c) ?? isPythonSpace(c) }
        var u = Array(s.unicodeScalars)[...]
        if leading { while let f = u.first, drop(f) { u = u.dropFirst() } }
        if trailing { while let l = u.last, drop(l) { u = u.dropLast() } }
        return String(String.UnicodeScalarView(u))
    }

    /// `str.split(sep, maxsplit)`: no separator splits on whitespace runs and drops empty parts.
    static func split(_ s: String, _ sep: String?, maxSplit: Int) -> [String] {
        guard let sep, !sep.isEmpty else {
            var parts: [String] = []
            var current = String.UnicodeScalarView()
            var inWord = false
            var u = Array(s.unicodeScalars)[...]
            while let c = u.first {
                if isPythonSpace(c) {
                    if inWord {
                        parts.append(String(current))
                        current = String.UnicodeScalarView()
                        inWord = false
                        if maxSplit >= 0 && parts.count == maxSplit {
                            while let f = u.first, isPythonSpace(f) { u = u.dropFirst() }
                            if !u.isEmpty { parts.append(String(String.UnicodeScalarView(u))) }
                            return parts
                        }
                    }
                } else {
                    current.append(c)
                    inWord = true
                }
                u = u.dropFirst()
            }
            if inWord { parts.append(String(current)) }
            return parts
        }
        var parts: [String] = []
        var rest = Substring(s)
        while maxSplit < 0 || parts.count < maxSplit, let r = rest.range(of: sep) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        guard count >= 0 else { return s.replacingOccurrences(of: old, with: new) }
        var out = "", rest = Substring(s), n = 0
        while n < count, !old.isEmpty, let r = rest.range(of: old) {
            out += rest[..<r.lowerBound] + new
            rest = rest[r.upperBound...]
            n += 1
        }
        return out + rest
    }

    /// `str.title()`: a cased character after an uncased one is upper-cased, the others lower-cased.
    static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s {
            let cased = c.isUppercase || c.isLowercase
            out += previousCased ? c.lowercased() : c.uppercased()
            previousCased = cased
        }
        return out
    }

    /// `str.capitalize()` and Jinja's `capitalize` filter: the first character upper, the rest lower.
    static func capitalize(_ s: String) -> String {
        guard let f = s.first else { return s }
        return f.uppercased() + s.dropFirst().lowercased()
    }

    /// Jinja's `title` filter: words begin after spaces, hyphens and opening brackets.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atStart = true
        for c in s {
            if c.isWhitespace || "-({[<".contains(c) {
                out.append(c)
                atStart = true
            } else {
                out += atStart ? c.uppercased() : c.lowercased()
                atStart = false
            }
        }
        return out
    }
}
