import Foundation

/// A JSON string literal escaped the way both of Balcony's references write one — Python's
/// `json.dumps(..., ensure_ascii=False)` (chat templates' `tojson`) and serde_json (the
/// safetensors headers the reference writes): quote, backslash and control characters only,
/// control characters without a short form as lowercase `\u00xx`; `/` and non-ASCII as they are.
enum JSONStringLiteral {
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
