/// Renders a parsed template. Variables live in a stack of scopes: a `for` body gets its own
/// (so `{% set %}` inside a loop does not leak out, as in Jinja), `namespace()` objects are the
/// way out. Output size and the total number of loop iterations are bounded.
struct JinjaInterpreter {
    struct Limits: Sendable {
        /// Bytes of rendered text (and of any one string built on the way).
        var maxOutputBytes = 4 << 20
        /// Loop iterations over the whole render.
        var maxIterations = 100_000
    }

    let limits: Limits
    private var scopes: [[String: JinjaValue]]
    private var output = ""
    private var iterations = 0
    var line = 0

    private enum Flow: Error { case breakLoop, continueLoop }

    init(variables: [String: JinjaValue], limits: Limits) {
        self.limits = limits
        self.scopes = [variables]
    }

    static func render(_ nodes: [JinjaNode], variables: [String: JinjaValue], limits: Limits) throws -> String {
        var r = JinjaInterpreter(variables: variables, limits: limits)
        do {
            try r.run(nodes)
        } catch is Flow {
            throw JinjaError.syntax("'break' or 'continue' outside a loop", line: r.line)
        }
        return r.output
    }

    // MARK: - Statements

    private mutating func run(_ nodes: [JinjaNode]) throws {
        for node in nodes {
            switch node {
            case .text(let t):
                try emit(t)
            case .output(let e, let l):
                line = l
                try emit(try eval(e).rendered)
            case .ifChain(let branches, let otherwise, let l):
                line = l
                var taken = false
                for (condition, body) in branches where try eval(condition).isTruthy {
                    try run(body)
                    taken = true
                    break
                }
                if !taken { try run(otherwise) }
            case .forLoop(let targets, let iterable, let condition, let body, let otherwise, let l):
                line = l
                try runFor(targets, try eval(iterable), condition, body, otherwise)
            case .set(let target, let e, let l):
                line = l
                try assign(target, try eval(e))
            case .setBlock(let name, let body, let l):
                line = l
                let saved = output
                output = ""
                try run(body)
                let captured = output
                output = saved
                scopes[scopes.count - 1][name] = .string(captured)
            case .breakLoop: throw Flow.breakLoop
            case .continueLoop: throw Flow.continueLoop
            }
        }
    }

    private mutating func emit(_ s: String) throws {
        output += s
        guard output.utf8.count <= limits.maxOutputBytes else {
            throw JinjaError.limit("the rendered prompt exceeds \(limits.maxOutputBytes) bytes")
        }
    }

    private mutating func runFor(_ targets: [String], _ iterable: JinjaValue, _ condition: JinjaExpr?, _ body: [JinjaNode],
                                 _ otherwise: [JinjaNode]) throws {
        var items: [JinjaValue]
        switch iterable {
        case .list(let a): items = a
        case .dict(let d): items = d.keys.map { .string($0) }
        case .string(let s): items = s.map { .string(String($0)) }
        case .undefined, .none: items = []
        default: throw JinjaError.runtime("cannot loop over a \(iterable.typeName)", line: line)
        }
        scopes.append([:])
        defer { scopes.removeLast() }
        if let condition {
            // `for x in xs if cond`: the filter runs first, so loop.length and loop.last see the filtered list.
            var kept: [JinjaValue] = []
            for item in items {
                try bind(targets, item)
                if try eval(condition).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            scopes.removeLast()
            scopes.append([:])
            try run(otherwise)
            return
        }
        for (k, item) in items.enumerated() {
            iterations += 1
            guard iterations <= limits.maxIterations else {
                throw JinjaError.limit("more than \(limits.maxIterations) loop iterations")
            }
            scopes[scopes.count - 1] = [:]
            try bind(targets, item)
            var loop = JinjaDict()
            loop["index"] = .int(k + 1)
            loop["index0"] = .int(k)
            loop["revindex"] = .int(items.count - k)
            loop["revindex0"] = .int(items.count - k - 1)
            loop["first"] = .bool(k == 0)
            loop["last"] = .bool(k == items.count - 1)
            loop["length"] = .int(items.count)
            loop["previtem"] = k > 0 ? items[k - 1] : .undefined
            loop["nextitem"] = k + 1 < items.count ? items[k + 1] : .undefined
            scopes[scopes.count - 1]["loop"] = .dict(loop)
            do {
                try run(body)
            } catch Flow.breakLoop {
                break
            } catch Flow.continueLoop {
                continue
            }
        }
    }

    private mutating func bind(_ targets: [String], _ item: JinjaValue) throws {
        if targets.count == 1 {
            scopes[scopes.count - 1][targets[0]] = item
            return
        }
        guard case .list(let parts) = item, parts.count == targets.count else {
            throw JinjaError.runtime("cannot unpack a \(item.typeName) into \(targets.count) variables", line: line)
        }
        for (t, v) in zip(targets, parts) { scopes[scopes.count - 1][t] = v }
    }

    private mutating func assign(_ target: JinjaSetTarget, _ value: JinjaValue) throws {
        switch target {
        case .names(let names):
            if names.count == 1 {
                scopes[scopes.count - 1][names[0]] = value
            } else {
                guard case .list(let parts) = value, parts.count == names.count else {
                    throw JinjaError.runtime("cannot unpack a \(value.typeName) into \(names.count) variables", line: line)
                }
                for (n, v) in zip(names, parts) { scopes[scopes.count - 1][n] = v }
            }
        case .attribute(let name, let attr):
            guard case .namespace(let ns) = lookup(name) else {
                throw JinjaError.runtime("'\(name).\(attr)' can only be set on a namespace()", line: line)
            }
            ns.values[attr] = value
        }
    }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        return .undefined
    }

    // MARK: - Expressions

    mutating func eval(_ e: JinjaExpr) throws -> JinjaValue {
        switch e {
        case .literal(let l):
            switch l {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let n): return .int(n)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let n):
            return lookup(n)
        case .list(let items):
            return .list(try items.map { try eval($0) })
        case .dict(let pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                guard case .string(let key) = try eval(k) else { throw error("dictionary keys must be strings") }
                d[key] = try eval(v)
            }
            return .dict(d)
        case .attribute(let base, let name):
            return try attribute(try eval(base), name)
        case .item(let base, let index):
            return try item(try eval(base), try eval(index))
        case .slice(let base, let start, let stop, let step):
            return try slice(try eval(base), try start.map { try eval($0) }, try stop.map { try eval($0) },
                             try step.map { try eval($0) })
        case .call(let callee, let args, let kwargs):
            return try call(callee, try args.map { try eval($0) }, try kwargs.map { ($0.0, try eval($0.1)) })
        case .filter(let base, let name, let args, let kwargs):
            return try filter(name, try eval(base), try args.map { try eval($0) }, try kwargs.map { ($0.0, try eval($0.1)) })
        case .test(let base, let name, let args, let negated):
            let r = try test(name, try eval(base), try args.map { try eval($0) })
            return .bool(r != negated)
        case .not(let x):
            return .bool(!(try eval(x).isTruthy))
        case .negate(let x):
            switch try eval(x) {
            case .int(let n): return .int(-n)
            case .double(let d): return .double(-d)
            case let v: throw error("cannot negate a \(v.typeName)")
            }
        case .and(let a, let b):
            let x = try eval(a)
            return x.isTruthy ? try eval(b) : x
        case .or(let a, let b):
            let x = try eval(a)
            return x.isTruthy ? x : try eval(b)
        case .binary(let op, let a, let b):
            return try binary(op, try eval(a), try eval(b))
        case .conditional(let value, let condition, let otherwise):
            if try eval(condition).isTruthy { return try eval(value) }
            return try otherwise.map { try eval($0) } ?? .undefined
        }
    }

    func error(_ message: String) -> JinjaError { .runtime(message, line: line) }

    /// A string result checked against the output bound, so `'x' * 10**9` or doubling loops stop early.
    func bounded(_ s: String) throws -> JinjaValue {
        guard s.utf8.count <= limits.maxOutputBytes else {
            throw JinjaError.limit("a string longer than \(limits.maxOutputBytes) bytes")
        }
        return .string(s)
    }

    private func attribute(_ base: JinjaValue, _ name: String) throws -> JinjaValue {
        switch base {
        case .undefined: throw error("'\(name)' of an undefined value")
        case .dict(let d): return d[name] ?? .undefined
        case .namespace(let ns): return ns.values[name] ?? .undefined
        default: return .undefined
        }
    }

    private func item(_ base: JinjaValue, _ index: JinjaValue) throws -> JinjaValue {
        switch (base, index) {
        case (.undefined, _): throw error("subscript of an undefined value")
        case (.dict(let d), .string(let k)): return d[k] ?? .undefined
        case (.namespace(let ns), .string(let k)): return ns.values[k] ?? .undefined
        case (.list(let a), _):
            guard let i = index.integer else { throw error("list indices must be integers, not \(index.typeName)") }
            let k = i < 0 ? a.count + i : i
            return a.indices.contains(k) ? a[k] : .undefined
        case (.string(let s), _):
            guard let i = index.integer else { throw error("string indices must be integers") }
            let chars = Array(s)
            let k = i < 0 ? chars.count + i : i
            return chars.indices.contains(k) ? .string(String(chars[k])) : .undefined
        default: return .undefined
        }
    }

    /// Python slicing `[start:stop:step]` of a list or string.
    private func slice(_ base: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func indices(_ n: Int) throws -> [Int] {
            func int(_ v: JinjaValue?) throws -> Int? {
                guard let v, v.isDefined, !(v.typeName == "none") else { return nil }
                guard let i = v.integer else { throw error("slice indices must be integers") }
                return i
            }
            let st = try int(step) ?? 1
            guard st != 0 else { throw error("slice step cannot be zero") }
            func clamp(_ i: Int?, _ dflt: Int) -> Int {
                guard var i else { return dflt }
                if i < 0 { i += n }
                return st > 0 ? min(max(i, 0), n) : min(max(i, -1), n - 1)
            }
            let lo = clamp(try int(start), st > 0 ? 0 : n - 1)
            let hi = clamp(try int(stop), st > 0 ? n : -1)
            return Array(stride(from: lo, to: hi, by: st))
        }
        switch base {
        case .list(let a): return .list(try indices(a.count).map { a[$0] })
        case .string(let s):
            let chars = Array(s)
            return .string(String(try indices(chars.count).map { chars[$0] }))
        default: throw error("cannot slice a \(base.typeName)")
        }
    }

    private func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        switch op {
        case "==": return .bool(JinjaValue.equal(a, b))
        case "!=": return .bool(!JinjaValue.equal(a, b))
        case "in", "notin":
            let found: Bool
            switch b {
            case .string(let s):
                guard case .string(let x) = a else { throw error("'in <string>' needs a string on the left, not \(a.typeName)") }
                found = s.contains(x)
            case .list(let items): found = items.contains { JinjaValue.equal($0, a) }
            case .dict(let d):
                if case .string(let k) = a { found = d[k] != nil } else { found = false }
            case .undefined: throw error("'in' an undefined value")
            default: throw error("'in' needs a string, list or dict, not \(b.typeName)")
            }
            return .bool(op == "in" ? found : !found)
        case "~":
            return try bounded(a.rendered + b.rendered)
        case "<", ">", "<=", ">=":
            let c: Bool
            if let x = a.number, let y = b.number {
                c = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else if case .string(let x) = a, case .string(let y) = b {
                c = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else {
                throw error("cannot compare \(a.typeName) and \(b.typeName) with '\(op)'")
            }
            return .bool(c)
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return try bounded(x + y)
            case (.list(let x), .list(let y)):
                guard x.count + y.count <= limits.maxIterations else { throw JinjaError.limit("a list longer than \(limits.maxIterations)") }
                return .list(x + y)
            default: return try arithmetic(op, a, b)
            }
        case "*":
            if case .string(let s) = a, let n = b.integer { return try repeated(s, n) }
            if case .string(let s) = b, let n = a.integer { return try repeated(s, n) }
            return try arithmetic(op, a, b)
        default:
            return try arithmetic(op, a, b)
        }
    }

    private func repeated(_ s: String, _ n: Int) throws -> JinjaValue {
        guard n > 0 else { return .string("") }
        guard s.utf8.count.multipliedReportingOverflow(by: n).partialValue <= limits.maxOutputBytes,
              !s.utf8.count.multipliedReportingOverflow(by: n).overflow else {
            throw JinjaError.limit("a string longer than \(limits.maxOutputBytes) bytes")
        }
        return .string(String(repeating: s, count: n))
    }

    private func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if a.typeName == "undefined" || b.typeName == "undefined" { throw error("'\(op)' with an undefined value") }
        if let x = a.integer, let y = b.integer {
            switch op {
            case "+": let r = x.addingReportingOverflow(y); if !r.overflow { return .int(r.partialValue) }
            case "-": let r = x.subtractingReportingOverflow(y); if !r.overflow { return .int(r.partialValue) }
            case "*": let r = x.multipliedReportingOverflow(by: y); if !r.overflow { return .int(r.partialValue) }
            case "//", "%":
                guard y != 0 else { throw error("division by zero") }
                // Python floors toward negative infinity.
                var q = x / y
                if (x % y != 0) && ((x < 0) != (y < 0)) { q -= 1 }
                return .int(op == "//" ? q : x - q * y)
            default: break
            }
        }
        guard let x = a.number, let y = b.number else {
            throw error("unsupported operand types for '\(op)': \(a.typeName) and \(b.typeName)")
        }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw error("division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw error("division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw error("division by zero") }
            return .double(x - y * (x / y).rounded(.down))
        default: throw error("unknown operator '\(op)'")
        }
    }
}
