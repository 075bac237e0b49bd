/// Builds the syntax tree from the lexer's segments: statements by recursive descent over the
/// tag list, expressions by Jinja's precedence (`or` < `and` < `not` < comparisons < `+ -` < `~`
/// < `* / // %` < unary minus < filters, tests, calls, attributes and subscripts).
///
/// Nesting is bounded (`maxDepth` blocks and expression levels together) so that a hostile template
/// fails with an error instead of exhausting the stack.
struct JinjaParser {
    typealias Token = JinjaLexer.Token
    static let maxDepth = 100

    private let segments: [JinjaLexer.Segment]
    private var index = 0
    private var depth = 0

    // The tokens of the tag being parsed.
    private var tokens: [Token] = []
    private var position = 0
    private var line = 1

    static func parse(_ source: String) throws -> [JinjaNode] {
        var p = JinjaParser(segments: try JinjaLexer.segments(source))
        let (nodes, end) = try p.parseBlock(until: [])
        if let end { throw JinjaError.syntax("'\(end)' without a matching opening tag", line: p.line) }
        return nodes
    }

    private init(segments: [JinjaLexer.Segment]) {
        self.segments = segments
    }

    // MARK: - Statements

    /// Nodes up to one of the `until` keywords (returned, its tag's tokens left in `tokens`) or the end.
    private mutating func parseBlock(until: Set<String>) throws -> ([JinjaNode], String?) {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw JinjaError.syntax("blocks nested deeper than \(Self.maxDepth)", line: line) }
        var nodes: [JinjaNode] = []
        while index < segments.count {
            let segment = segments[index]
            index += 1
            switch segment {
            case .text(let t):
                nodes.append(.text(t))
            case .output(let toks, let l):
                begin(toks, l)
                let e = try parseExpression()
                try expectEnd()
                nodes.append(.output(e, line: l))
            case .statement(let toks, let l):
                begin(toks, l)
                guard case .name(let keyword)? = next() else { throw JinjaError.syntax("empty or malformed '{% %}' tag", line: l) }
                if until.contains(keyword) { return (nodes, keyword) }
                switch keyword {
                case "if": nodes.append(try parseIf(line: l))
                case "for": nodes.append(try parseFor(line: l))
                case "set": nodes.append(try parseSet(line: l))
                case "break": try expectEnd(); nodes.append(.breakLoop)
                case "continue": try expectEnd(); nodes.append(.continueLoop)
                case "endif", "endfor", "elif", "else", "endset":
                    if until.isEmpty { throw JinjaError.syntax("'\(keyword)' without a matching opening tag", line: l) }
                    throw JinjaError.syntax("'\(keyword)' where \(until.sorted().map { "'\($0)'" }.joined(separator: " or ")) was expected",
                                            line: l)
                default:
                    throw JinjaError.syntax("unsupported tag '\(keyword)'", line: l)
                }
            }
        }
        if !until.isEmpty {
            throw JinjaError.syntax("missing \(until.sorted().map { "'{% \($0) %}'" }.joined(separator: " or ")) before the end of the template",
                                    line: line)
        }
        return (nodes, nil)
    }

    private mutating func parseIf(line l: Int) throws -> JinjaNode {
        var branches: [(JinjaExpr, [JinjaNode])] = []
        var condition = try parseExpression()
        try expectEnd()
        while true {
            let (body, end) = try parseBlock(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseExpression()
                try expectEnd()
            case "else":
                try expectEnd()
                let (otherwise, _) = try parseBlock(until: ["endif"])
                try expectEnd()
                return .ifChain(branches, otherwise: otherwise, line: l)
            default:
                try expectEnd()
                return .ifChain(branches, otherwise: [], line: l)
            }
        }
    }

    private mutating func parseFor(line l: Int) throws -> JinjaNode {
        var targets: [String] = []
        repeat {
            guard case .name(let n)? = next() else { throw JinjaError.syntax("'for' needs a variable name", line: l) }
            targets.append(n)
        } while accept(.op(","))
        guard accept(.name("in")) else { throw JinjaError.syntax("'for' needs 'in'", line: l) }
        let iterable = try parseOr()
        var condition: JinjaExpr?
        if accept(.name("if")) { condition = try parseOr() }
        if accept(.name("recursive")) { throw JinjaError.syntax("recursive loops are not supported", line: l) }
        try expectEnd()
        let (body, end) = try parseBlock(until: ["else", "endfor"])
        try expectEnd()
        var otherwise: [JinjaNode] = []
        if end == "else" {
            (otherwise, _) = try parseBlock(until: ["endfor"])
            try expectEnd()
        }
        return .forLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise, line: l)
    }

    private mutating func parseSet(line l: Int) throws -> JinjaNode {
        guard case .name(let first)? = next() else { throw JinjaError.syntax("'set' needs a variable name", line: l) }
        var target = JinjaSetTarget.names([first])
        if accept(.op(".")) {
            guard case .name(let attr)? = next() else { throw JinjaError.syntax("'set' needs an attribute name after '.'", line: l) }
            target = .attribute(first, attr)
        } else if peek() == .op(",") {
            var names = [first]
            while accept(.op(",")) {
                guard case .name(let n)? = next() else { throw JinjaError.syntax("'set' needs variable names", line: l) }
                names.append(n)
            }
            target = .names(names)
        }
        if position == tokens.count, case .names(let names) = target, names.count == 1 {
            let (body, _) = try parseBlock(until: ["endset"])
            try expectEnd()
            return .setBlock(first, body, line: l)
        }
        guard accept(.op("=")) else { throw JinjaError.syntax("'set' needs '='", line: l) }
        let value = try parseTupleOrExpression()
        try expectEnd()
        return .set(target, value, line: l)
    }

    // MARK: - Token access

    private mutating func begin(_ toks: [Token], _ l: Int) {
        tokens = toks
        position = 0
        line = l
    }

    private func peek(_ k: Int = 0) -> Token? { position + k < tokens.count ? tokens[position + k] : nil }

    private mutating func next() -> Token? {
        defer { position += 1 }
        return peek()
    }

    private mutating func accept(_ t: Token) -> Bool {
        guard peek() == t else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ t: Token) throws {
        guard accept(t) else { throw JinjaError.syntax("expected \(describe(t)), found \(peek().map(describe) ?? "the end of the tag")", line: line) }
    }

    private func expectEnd() throws {
        if let t = peek() { throw JinjaError.syntax("unexpected \(describe(t)) at the end of the tag", line: line) }
    }

    private func describe(_ t: Token) -> String {
        switch t {
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string '\(s.prefix(20))'"
        case .int(let n): return "\(n)"
        case .double(let d): return "\(d)"
        case .op(let o): return "'\(o)'"
        }
    }

    // MARK: - Expressions

    private mutating func nested<T>(_ body: (inout JinjaParser) throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw JinjaError.syntax("expression nested deeper than \(Self.maxDepth)", line: line) }
        return try body(&self)
    }

    /// `a, b` (a tuple, as a list) or one expression.
    private mutating func parseTupleOrExpression() throws -> JinjaExpr {
        let first = try parseExpression()
        guard peek() == .op(",") else { return first }
        var items = [first]
        while accept(.op(",")) {
            if peek() == nil { break }
            items.append(try parseExpression())
        }
        return .list(items)
    }

    mutating func parseExpression() throws -> JinjaExpr {
        try nested { p in
            let value = try p.parseOr()
            guard p.accept(.name("if")) else { return value }
            let condition = try p.parseOr()
            let otherwise = p.accept(.name("else")) ? try p.parseExpression() : nil
            return .conditional(value, condition, otherwise)
        }
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var e = try parseAnd()
        while accept(.name("or")) { e = .or(e, try parseAnd()) }
        return e
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var e = try parseNot()
        while accept(.name("and")) { e = .and(e, try parseNot()) }
        return e
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if accept(.name("not")) { return try nested { .not(try $0.parseNot()) } }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        var e = try parseAdditive()
        while true {
            if case .op(let o)? = peek(), ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                position += 1
                e = .binary(o, e, try parseAdditive())
            } else if accept(.name("in")) {
                e = .binary("in", e, try parseAdditive())
            } else if peek() == .name("not") && peek(1) == .name("in") {
                position += 2
                e = .binary("notin", e, try parseAdditive())
            } else {
                return e
            }
        }
    }

    private mutating func parseAdditive() throws -> JinjaExpr {
        var e = try parseConcat()
        while case .op(let o)? = peek(), o == "+" || o == "-" {
            position += 1
            e = .binary(o, e, try parseConcat())
        }
        return e
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        var e = try parseMultiplicative()
        while accept(.op("~")) { e = .binary("~", e, try parseMultiplicative()) }
        return e
    }

    private mutating func parseMultiplicative() throws -> JinjaExpr {
        var e = try parseUnary()
        while case .op(let o)? = peek(), ["*", "/", "//", "%"].contains(o) {
            position += 1
            e = .binary(o, e, try parseUnary())
        }
        return e
    }

    private mutating func parseUnary() throws -> JinjaExpr {
        if accept(.op("-")) { return try nested { try $0.parsePostfixFilters(.negate(try $0.parseUnary())) } }
        if accept(.op("+")) { return try nested { try $0.parseUnary() } }
        return try parsePostfixFilters(try parsePrimary())
    }

    /// Attributes, subscripts and calls, then `| filter` and `is test` chains.
    private mutating func parsePostfixFilters(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = try parsePostfix(base)
        while true {
            if accept(.op("|")) {
                guard case .name(let name)? = next() else { throw JinjaError.syntax("'|' needs a filter name", line: line) }
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if accept(.op("(")) { (args, kwargs) = try parseArguments() }
                e = try parsePostfix(.filter(e, name, args, kwargs))
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                guard case .name(let name)? = next() else { throw JinjaError.syntax("'is' needs a test name", line: line) }
                var args: [JinjaExpr] = []
                if accept(.op("(")) {
                    args = try parseArguments().0
                } else if let t = peek(), Self.startsOperand(t) {
                    args = [try parsePrimary()]
                }
                e = .test(e, name, args, negated: negated)
            } else {
                return e
            }
        }
    }

    /// Whether a token can start a test's bare argument (`is divisibleby 3`, `is equalto 'x'`).
    private static func startsOperand(_ t: Token) -> Bool {
        switch t {
        case .string, .int, .double: return true
        case .name(let n): return !["and", "or", "not", "in", "is", "if", "else"].contains(n)
        case .op: return false
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            if accept(.op(".")) {
                switch next() {
                case .name(let n)?: e = .attribute(e, n)
                case .int(let n)?: e = .item(e, .literal(.int(n)))
                default: throw JinjaError.syntax("'.' needs an attribute name", line: line)
                }
            } else if accept(.op("[")) {
                e = try parseSubscript(e)
            } else if accept(.op("(")) {
                let (args, kwargs) = try parseArguments()
                e = .call(e, args, kwargs)
            } else {
                return e
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = [nil]
        var colons = 0
        while peek() != .op("]") {
            if accept(.op(":")) {
                colons += 1
                guard colons <= 2 else { throw JinjaError.syntax("a slice has at most two ':'", line: line) }
                parts.append(nil)
            } else {
                guard parts[parts.count - 1] == nil else { throw JinjaError.syntax("expected ']' or ':' in a subscript", line: line) }
                parts[parts.count - 1] = try parseExpression()
            }
        }
        try expect(.op("]"))
        if colons == 0 {
            guard let index = parts[0] else { throw JinjaError.syntax("empty subscript '[]'", line: line) }
            return .item(base, index)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, parts[0], parts[1], parts[2])
    }

    /// After "(": positional and `name=value` arguments through ")".
    private mutating func parseArguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
        while !accept(.op(")")) {
            if case .name(let n)? = peek(), peek(1) == .op("=") {
                position += 2
                kwargs.append((n, try parseExpression()))
            } else {
                guard kwargs.isEmpty else { throw JinjaError.syntax("a positional argument after a keyword argument", line: line) }
                args.append(try parseExpression())
            }
            if !accept(.op(",")) {
                try expect(.op(")"))
                break
            }
        }
        return (args, kwargs)
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        guard let t = next() else { throw JinjaError.syntax("an expression is missing", line: line) }
        switch t {
        case .string(var s):
            // Adjacent string literals concatenate, as in Python.
            while case .string(let more)? = peek() { s += more; position += 1 }
            return .literal(.string(s))
        case .int(let n): return .literal(.int(n))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            return try nested { p in
                if p.accept(.op(")")) { return .list([]) }
                let first = try p.parseExpression()
                if p.accept(.op(")")) { return first }
                var items = [first]
                while p.accept(.op(",")) {
                    if p.peek() == .op(")") { break }
                    items.append(try p.parseExpression())
                }
                try p.expect(.op(")"))
                return .list(items)
            }
        case .op("["):
            return try nested { p in
                var items: [JinjaExpr] = []
                while !p.accept(.op("]")) {
                    items.append(try p.parseExpression())
                    if !p.accept(.op(",")) { try p.expect(.op("]")); break }
                }
                return .list(items)
            }
        case .op("{"):
            return try nested { p in
                var pairs: [(JinjaExpr, JinjaExpr)] = []
                while !p.accept(.op("}")) {
                    let k = try p.parseExpression()
                    try p.expect(.op(":"))
                    pairs.append((k, try p.parseExpression()))
                    if !p.accept(.op(",")) { try p.expect(.op("}")); break }
                }
                return .dict(pairs)
            }
        default:
            throw JinjaError.syntax("unexpected \(describe(t))", line: line)
        }
    }
}
