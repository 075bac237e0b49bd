/// Global functions and methods of values: `raise_exception`, `range`, `namespace`, and the
/// Python `str`/`dict` methods chat templates call (`content.strip()`, `message.get('x')`).
extension JinjaInterpreter {
    mutating func call(_ callee: JinjaExpr, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        if case .attribute(let base, let name) = callee {
            return try method(try eval(base), name, args, kwargs)
        }
        guard case .name(let name) = callee else { throw error("only functions and methods can be called") }
        switch name {
        case "raise_exception":
            throw JinjaError.raised(args.first?.rendered ?? "raise_exception() was called")
        case "range":
            let ints = try args.map { v -> Int in
                guard let i = v.integer else { throw error("range() needs integers") }
                return i
            }
            let (lo, hi, step): (Int, Int, Int)
            switch ints.count {
            case 1: (lo, hi, step) = (0, ints[0], 1)
            case 2: (lo, hi, step) = (ints[0], ints[1], 1)
            case 3: (lo, hi, step) = (ints[0], ints[1], ints[2])
            default: throw error("range() takes 1 to 3 arguments")
            }
            guard step != 0 else { throw error("range() step cannot be zero") }
            let count = step > 0 ? max(0, (hi - lo + step - 1) / step) : max(0, (lo - hi - step - 1) / -step)
            guard count <= limits.maxIterations else { throw JinjaError.limit("range() of \(count) numbers") }
            return .list(stride(from: lo, to: hi, by: step).map { .int($0) })
        case "namespace":
            let ns = JinjaNamespace()
            if case .dict(let d)? = args.first { for k in d.keys { ns.values[k] = d[k] } }
            for (k, v) in kwargs { ns.values[k] = v }
            return .namespace(ns)
        case "dict":
            var d = JinjaDict()
            for (k, v) in kwargs { d[k] = v }
            return .dict(d)
        default:
            throw error("unknown function '\(name)'")
        }
    }

    private func method(_ base: JinjaValue, _ name: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        func str(_ k: Int) throws -> String? {
            guard k < args.count else { return nil }
            if case .none = args[k] { return nil }
            guard case .string(let s) = args[k] else { throw error("\(name)() needs a string argument") }
            return s
        }
        switch base {
        case .string(let s):
            switch name {
            case "strip": return .string(JinjaText.strip(s, try str(0), leading: true, trailing: true))
            case "lstrip": return .string(JinjaText.strip(s, try str(0), leading: true, trailing: false))
            case "rstrip": return .string(JinjaText.strip(s, try str(0), leading: false, trailing: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(JinjaText.pythonTitle(s))
            case "capitalize": return .string(JinjaText.capitalize(s))
            case "startswith", "endswith":
                let candidates: [String]
                switch args.first {
                case .string(let p)?: candidates = [p]
                case .list(let items)?: candidates = items.compactMap { if case .string(let p) = $0 { return p } else { return nil } }
                default: throw error("\(name)() needs a string or a tuple of strings")
                }
                let su = Array(s.unicodeScalars)
                return .bool(candidates.contains { p in
                    let pu = Array(p.unicodeScalars)
                    return name == "startswith" ? su.starts(with: pu) : su.reversed().starts(with: pu.reversed())
                })
            case "split":
                let maxSplit = args.count > 1 ? args[1].integer ?? -1 : kwargs.first { $0.0 == "maxsplit" }?.1.integer ?? -1
                return .list(JinjaText.split(s, try str(0), maxSplit: maxSplit).map { .string($0) })
            case "replace":
                guard let old = try str(0), let new = try str(1) else { throw error("replace() needs two strings") }
                return try bounded(JinjaText.replace(s, old, new, count: args.count > 2 ? args[2].integer ?? -1 : -1))
            case "find":
                guard let sub = try str(0) else { throw error("find() needs a string") }
                guard let r = s.range(of: sub) else { return .int(-1) }
                return .int(s.distance(from: s.startIndex, to: r.lowerBound))
            case "count":
                guard let sub = try str(0), !sub.isEmpty else { throw error("count() needs a non-empty string") }
                return .int(s.components(separatedBy: sub).count - 1)
            case "join":
                guard case .list(let items)? = args.first else { throw error("join() needs a list") }
                return try bounded(items.map(\.rendered).joined(separator: s))
            case "isdigit": return .bool(!s.isEmpty && s.allSatisfy { $0.isNumber })
            case "isspace": return .bool(!s.isEmpty && s.allSatisfy { $0.isWhitespace })
            default: break
            }
        case .dict(let d):
            switch name {
            case "items": return .list(d.keys.map { .list([.string($0), d[$0]!]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.keys.map { d[$0]! })
            case "get":
                guard case .string(let k)? = args.first else { throw error("get() needs a string key") }
                return d[k] ?? (args.count > 1 ? args[1] : .none)
            default: break
            }
        case .undefined:
            throw error("'\(name)()' called on an undefined value")
        default: break
        }
        throw error("a \(base.typeName) has no method '\(name)'")
    }
}
