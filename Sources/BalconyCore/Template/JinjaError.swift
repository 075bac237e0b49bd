import Foundation

/// Why a template could not be parsed or rendered. Every message names the line of the template
/// where it applies, so that a user can find the construct in the model's `tokenizer_config.json`.
public enum JinjaError: Error, Equatable, LocalizedError, Sendable {
    /// The template's text is not valid (in the subset Balcony implements).
    case syntax(String, line: Int)
    /// Rendering failed: a type error, an undefined value used as something, an unknown filter.
    case runtime(String, line: Int)
    /// The template called `raise_exception(message)`: the messages are not what it accepts.
    case raised(String)
    /// A bound on output size, loop iterations or nesting was exceeded (a hostile or broken template).
    case limit(String)

    public var errorDescription: String? {
        switch self {
        case .syntax(let m, let line): return "chat template syntax error at line \(line): \(m)"
        case .runtime(let m, let line): return "chat template error at line \(line): \(m)"
        case .raised(let m): return "the chat template rejected the messages: \(m)"
        case .limit(let m): return "chat template stopped: \(m)"
        }
    }
}
