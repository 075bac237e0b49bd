import Foundation

/// The filters (`value | name(args)`) and tests (`value is name`) chat templates use, with
/// Jinja's behaviour (and transformers' `tojson`, which is Python's `json.dumps`).
extension JinjaInterpreter {
    mutating func filter(_ name: String, _ v: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        func kw(_ key: String, _ position: Int) -> JinjaValue? {
            kwargs.first { $0.0 == key }?.1 ?? (position < args.count ? args[position] : nil)
        }
        switch name {
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .list(let a): return .int(a.count)
            case .dict(let d): return .int(d.keys.count)
            default: throw error("a \(v.typeName) has no length")
            }
        case "trim":
            guard case .string(let s) = v else { throw error("trim needs a string, not \(v.typeName)") }
            var chars: String?
            if case .string(let c)? = kw("chars", 0) { chars = c }
            return .string(JinjaText.strip(s, chars, leading: true, trailing: true))
        case "upper": return .string(v.rendered.uppercased())
        case "lower": return .string(v.rendered.lowercased())
        case "capitalize": return .string(JinjaText.capitalize(v.rendered))
        case "title": return .string(JinjaText.jinjaTitle(v.rendered))
        case "string": return .string(v.rendered)
        case "safe": return v
        case "default", "d":
            let fallback = kw("default_value", 0) ?? .string("")
            let boolean = kw("boolean", 1)?.isTruthy ?? false
            return (v.isDefined && (!boolean || v.isTruthy)) ? v : fallback
        case "tojson":
            var indent: Int?
            if let i = kw("indent", 0), i.isDefined, i.typeName != "none" { indent = i.integer }
            return try bounded(try JinjaJSON.dumps(v, indent: indent, line: line))
        case "first", "last":
            switch v {
            case .list(let a): return (name == "first" ? a.first : a.last) ?? .undefined
            case .string(let s): return (name == "first" ? s.first : s.last).map { .string(String($0)) } ?? .undefined
            default: throw error("\(name) needs a list or string")
            }
        case "join":
            guard case .list(let a) = v else { throw error("join needs a list") }
            var sep = ""
            if case .string(let s)? = kw("d", 0) { sep = s }
            if case .string(let attr)? = kw("attribute", 1) {
                return try bounded(a.map { item -> String in
                    if case .dict(let d) = item { return (d[attr] ?? .undefined).rendered }
                    return ""
                }.joined(separator: sep))
            }
            return try bounded(a.map(\.rendered).joined(separator: sep))
        case "list":
            switch v {
            case .list: return v
            case .string(let s): return .list(s.map { .string(String($0)) })
            case .dict(let d): return .list(d.keys.map { .string($0) })
            default: throw error("cannot make a list of a \(v.typeName)")
            }
        case "items":
            guard case .dict(let d) = v else { throw error("items needs a dict") }
            return .list(d.keys.map { .list([.string($0), d[$0]!]) })
        case "reverse":
            switch v {
            case .list(let a): return .list(a.reversed())
            case .string(let s): return .string(String(s.reversed()))
            default: throw error("cannot reverse a \(v.typeName)")
            }
        case "int":
            switch v {
            case .int: return v
            case .double(let d): return .int(Int(d))
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s): return .int(Int(s.trimmingCharacters(in: .whitespaces)) ?? 0)
            default: return .int(0)
            }
        case "float":
            return .double(v.number ?? (v.typeName == "string" ? Double(v.rendered) ?? 0 : 0))
        case "abs":
            switch v {
            case .int(let n): return .int(abs(n))
            case .double(let d): return .double(abs(d))
            default: throw error("abs needs a number")
            }
        case "replace":
            guard case .string(let old)? = args.first, case .string(let new)? = args.dropFirst().first else {
                throw error("replace needs two strings")
            }
            return try bounded(JinjaText.replace(v.rendered, old, new, count: args.count > 2 ? args[2].integer ?? -1 : -1))
        case "selectattr", "rejectattr":
            guard case .list(let a) = v else { throw error("\(name) needs a list") }
            guard case .string(let attr)? = args.first else { throw error("\(name) needs an attribute name") }
            var kept: [JinjaValue] = []
            for item in a {
                let value: JinjaValue
                if case .dict(let d) = item { value = d[attr] ?? .undefined } else { value = .undefined }
                let pass: Bool
                if case .string(let testName)? = args.dropFirst().first {
                    pass = try test(testName, value, Array(args.dropFirst(2)))
                } else {
                    pass = value.isTruthy
                }
                if pass == (name == "selectattr") { kept.append(item) }
            }
            return .list(kept)
        case "map":
            guard case .list(let a) = v else { throw error("map needs a list") }
            if case .string(let attr)? = kwargs.first(where: { $0.0 == "attribute" })?.1 {
                return .list(a.map { item in
                    if case .dict(let d) = item { return d[attr] ?? .undefined }
                    return .undefined
                })
            }
            guard case .string(let f)? = args.first else { throw error("map needs a filter name or attribute=") }
            return .list(try a.map { try filter(f, $0, Array(args.dropFirst()), []) })
        default:
            throw error("unknown filter '\(name)'")
        }
    }

    func test(_ name: String, _ v: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        switch name {
        case "defined": return v.isDefined
        case "undefined": return !v.isDefined
        case "none": return v.typeName == "none"
        case "string": return v.typeName == "string"
        case "number": return v.typeName == "int" || v.typeName == "float"
        case "integer": return v.typeName == "int"
        case "float": return v.typeName == "float"
        case "boolean": return v.typeName == "bool"
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": return v.typeName == "dict"
        case "sequence": return ["list", "string", "dict"].contains(v.typeName)
        case "iterable": return ["list", "string", "dict"].contains(v.typeName)
        case "even", "odd":
            guard let n = v.integer else { throw error("'\(name)' needs an integer") }
            return (n % 2 == 0) == (name == "even")
        case "divisibleby":
            guard let n = v.integer, let d = args.first?.integer, d != 0 else { throw error("'divisibleby' needs integers") }
            return n % d == 0
        case "eq", "equalto", "==", "sameas": return JinjaValue.equal(v, args.first ?? .undefined)
        case "ne", "!=": return !JinjaValue.equal(v, args.first ?? .undefined)
        case "in":
            guard let container = args.first else { throw error("'in' test needs a container") }
            switch container {
            case .list(let items): return items.contains { JinjaValue.equal($0, v) }
            case .string(let s): return s.contains(v.rendered)
            case .dict(let d): return d[v.rendered] != nil
            default: return false
            }
        case "lower": return v.rendered == v.rendered.lowercased()
        case "upper": return v.rendered == v.rendered.uppercased()
        default: throw error("unknown test '\(name)'")
        }
    }
}
