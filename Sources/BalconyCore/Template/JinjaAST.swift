/// The parsed form of a template: statements (`JinjaNode`) holding expressions (`JinjaExpr`).
/// Both are immutable values, so a parsed template can be shared by concurrent requests.
indirect enum JinjaExpr: Sendable {
    case literal(JinjaLiteral)
    case name(String)
    case list([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case item(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
    case not(JinjaExpr)
    case negate(JinjaExpr)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    /// `+ - * / // % ~ == != < > <= >= in` and `not in` (as "notin").
    case binary(String, JinjaExpr, JinjaExpr)
    /// `value if condition else otherwise` (no `else`: undefined).
    case conditional(JinjaExpr, JinjaExpr, JinjaExpr?)
}

/// A constant written in the template.
enum JinjaLiteral: Sendable {
    case none, bool(Bool), int(Int), double(Double), string(String)
}

/// Where `{% set %}` stores: a variable, or an attribute of a `namespace()` object.
enum JinjaSetTarget: Sendable {
    case names([String])
    case attribute(String, String)
}

enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, line: Int)
    case ifChain([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case forLoop(targets: [String], iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode],
                 line: Int)
    case set(JinjaSetTarget, JinjaExpr, line: Int)
    /// `{% set name %}...{% endset %}`: the rendered body as a string.
    case setBlock(String, [JinjaNode], line: Int)
    case breakLoop, continueLoop
}
