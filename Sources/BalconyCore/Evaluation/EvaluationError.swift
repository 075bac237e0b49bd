import Foundation

/// Errors of `balcony eval`'s inputs: each says what is wrong, where, and what to do.
public enum EvaluationError: LocalizedError, Equatable {
    case unreadableFile(String, String)
    case emptyData(String)
    case emptyTaskFile(String)
    case badTaskItem(file: String, line: Int, String)
    case unknownTaskFormat(file: String, String)
    case unknownBaseline(String)
    case contextTooLong(file: String, line: Int, tokens: Int, context: Int)

    public var errorDescription: String? {
        switch self {
        case let .unreadableFile(path, why):
            return "cannot read \(path): \(why)"
        case let .emptyData(path):
            return "\(path) has no text to evaluate (it needs at least one token after BOS); pass a non-empty UTF-8 text file with --data"
        case let .emptyTaskFile(path):
            return "\(path) holds no multiple-choice items; give a JSON Lines file with one item per line"
        case let .badTaskItem(file, line, why):
            return "\(file):\(line): \(why)"
        case let .unknownTaskFormat(file, why):
            return "\(file): \(why); the formats are \(TaskFormat.allCases.map(\.rawValue).joined(separator: ", ")) (force one with FORMAT:PATH, e.g. arc:ARC-Easy-Dev.jsonl)"
        case let .unknownBaseline(name):
            return "unknown baseline '\(name)'; the baselines are early-exit and shortgpt (or none)"
        case let .contextTooLong(file, line, tokens, context):
            return "\(file):\(line): the continuation alone has \(tokens) tokens but the model's context holds \(context)"
        }
    }
}
