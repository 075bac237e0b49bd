import Foundation

/// A Jinja template in the subset Hugging Face chat templates use, parsed once and rendered many
/// times (it is immutable and `Sendable`).
///
/// Supported: `{{ }}`, `{% if/elif/else %}`, `{% for %}` (with `loop.*`, `else`, an `if` filter,
/// `break`/`continue`), `{% set %}` (also `ns.attr` and block form), comments, whitespace control
/// with transformers' `trim_blocks`/`lstrip_blocks`, the operators, filters and tests of
/// `JinjaInterpreter`, Python string and dict methods, `raise_exception`, `range`, `namespace`.
/// Not supported (a syntax error): macros, `call`, `filter` blocks, `include`/`extends`, recursive loops.
public struct JinjaTemplate: Sendable {
    public let source: String
    let nodes: [JinjaNode]

    /// - Throws: `JinjaError.syntax` naming the line.
    public init(_ source: String) throws {
        self.source = source
        self.nodes = try JinjaParser.parse(source)
    }

    /// Renders with `variables` given as JSON-like values (`String`, numbers, `Bool`, `NSNull`,
    /// arrays, `[String: Any]`).
    /// - Throws: `JinjaError` (`raised` when the template calls `raise_exception`).
    public func render(_ variables: [String: Any], maxOutputBytes: Int = 4 << 20) throws -> String {
        try render(values: variables.mapValues { JinjaValue(json: $0) }, maxOutputBytes: maxOutputBytes)
    }

    func render(values: [String: JinjaValue], maxOutputBytes: Int = 4 << 20) throws -> String {
        var limits = JinjaInterpreter.Limits()
        limits.maxOutputBytes = maxOutputBytes
        return try JinjaInterpreter.render(nodes, variables: values, limits: limits)
    }
}
