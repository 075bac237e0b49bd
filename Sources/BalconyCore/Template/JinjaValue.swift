import Foundation

/// A value during rendering, with Python's semantics where templates rely on them (truthiness,
/// equality of 1 and 1.0, `str()` of lists and None) because Hugging Face renders with Python Jinja.
enum JinjaValue {
    /// A missing variable, key or attribute: prints as "", is false, fails when used as a value.
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case dict(JinjaDict)
    /// `namespace(...)`: the one mutable object, so that `{% set ns.x = ... %}` escapes a loop.
    case namespace(JinjaNamespace)

    /// Builds a value from JSON (as `JSONSerialization` reads it): messages and extra variables.
    init(json: Any?) {
        switch json {
        case nil, is NSNull: self = .none
        case let s as String: self = .string(s)
        case let b as Bool where !(json is NSNumber): self = .bool(b)
        case let n as NSNumber:
            // JSONSerialization's booleans are NSNumbers of type "c"; its reals "d" or "f".
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "d", "f": self = .double(n.doubleValue)
            default: self = .int(n.intValue)
            }
        case let a as [Any]: self = .list(a.map { JinjaValue(json: $0) })
        case let d as [String: Any]:
            var dict = JinjaDict()
            for k in d.keys.sorted() { dict[k] = JinjaValue(json: d[k]) }
            self = .dict(dict)
        default: self = .string("\(json!)")
        }
    }

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let n): return n != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let a): return !a.isEmpty
        case .dict(let d): return !d.keys.isEmpty
        case .namespace: return true
        }
    }

    var isDefined: Bool {
        if case .undefined = self { return false }
        return true
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "none"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "string"
        case .list: return "list"
        case .dict: return "dict"
        case .namespace: return "namespace"
        }
    }

    /// `str(value)` as Python prints it inside `{{ }}`; undefined prints nothing.
    var rendered: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python's `repr`: strings quoted, as they appear inside a printed list or dict.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let n): return String(n)
        case .double(let d): return Self.pythonFloat(d)
        case .string(let s): return Self.pythonStringRepr(s)
        case .list(let a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.keys.map { Self.pythonStringRepr($0) + ": " + d[$0]!.repr }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded() && abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func pythonStringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(c) == quote { out += "\\" + String(c) }
                else if c.value < 0x20 || c.value == 0x7F { out += String(format: "\\x%02x", c.value) }
                else { out.unicodeScalars.append(c) }
            }
        }
        return out + String(quote)
    }

    /// Python `==`: numbers compare by value across int, float and bool; containers element-wise.
    static func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return x == y
        case (.list(let x), .list(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.dict(let x), .dict(let y)):
            return Set(x.keys) == Set(y.keys) && x.keys.allSatisfy { equal(x[$0]!, y[$0]!) }
        case (.namespace(let x), .namespace(let y)): return x === y
        default:
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    /// The value as a number, for arithmetic and comparison (bools count, as in Python).
    var number: Double? {
        switch self {
        case .int(let n): return Double(n)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var integer: Int? {
        switch self {
        case .int(let n): return n
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
}

/// A dictionary that keeps insertion order, as Python's does (`tojson` and `items()` follow it).
struct JinjaDict {
    private(set) var keys: [String] = []
    private var values: [String: JinjaValue] = [:]

    subscript(key: String) -> JinjaValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil, values[key] != nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}

/// The object `namespace()` returns; shared by reference so that assignments inside loops persist.
final class JinjaNamespace {
    var values = JinjaDict()
}
