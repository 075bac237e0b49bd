import Foundation

/// `tojson` as transformers defines it for chat templates: Python's `json.dumps(value,
/// ensure_ascii=False, indent=indent)` (separators ", " and ": ", or "," and newlines when indented;
/// non-ASCII text kept as it is; keys in insertion order).
enum JinjaJSON {
    static func dumps(_ v: JinjaValue, indent: Int?, line: Int) throws -> String {
        var out = ""
        try write(v, indent: indent, level: 0, into: &out, line: line)
        return out
    }

    private static func write(_ v: JinjaValue, indent: Int?, level: Int, into out: inout String, line: Int) throws {
        guard level < JinjaParser.maxDepth else { throw JinjaError.limit("tojson of a value nested deeper than \(JinjaParser.maxDepth)") }
        func newline(_ l: Int) { if let indent { out += "\n" + String(repeating: " ", count: indent * l) } }
        switch v {
        case .undefined: throw JinjaError.runtime("tojson of an undefined value", line: line)
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let n): out += String(n)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d > 0 ? "Infinity" : "-Infinity" } else { out += JinjaValue.pythonFloat(d) }
        case .string(let s): out += quoted(s)
        case .list(let items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += indent == nil ? ", " : "," }
                newline(level + 1)
                try write(item, indent: indent, level: level + 1, into: &out, line: line)
            }
            newline(level)
            out += "]"
        case .dict(let d):
            try writeObject(d, indent: indent, level: level, into: &out, line: line)
        case .namespace(let ns):
            try writeObject(ns.values, indent: indent, level: level, into: &out, line: line)
        }
    }

    private static func writeObject(_ d: JinjaDict, indent: Int?, level: Int, into out: inout String, line: Int) throws {
        guard !d.keys.isEmpty else { out += "{}"; return }
        out += "{"
        for (k, key) in d.keys.enumerated() {
            if k > 0 { out += indent == nil ? ", " : "," }
            if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
            out += quoted(key) + ": "
            try write(d[key]!, indent: indent, level: level + 1, into: &out, line: line)
        }
        if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
        out += "}"
    }

    /// A JSON string as Python writes it with `ensure_ascii=False`.
    static func quoted(_ s: String) -> String { JSONStringLiteral.quoted(s) }
}
