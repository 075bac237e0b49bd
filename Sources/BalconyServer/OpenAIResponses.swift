import BalconyCore
import Foundation

struct Usage: Encodable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int

    init(_ c: ServingCompletion) {
        prompt_tokens = c.promptTokens
        completion_tokens = c.completionTokens
        total_tokens = c.promptTokens + c.completionTokens
    }
}

/// The `balcony` field next to `usage`: the exit of the last token and every exit used, in order,
/// with its token count.
struct BalconyReport: Encodable {
    var exit: String?
    var exits: [ExitUsage]?
    var policy: String?
}

struct CompletionChoice: Encodable {
    var index = 0
    var text: String
    var logprobs: String? = nil
    var finish_reason: String?

    func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case index, text, logprobs, finish_reason }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(index, forKey: .index)
        try c.encode(text, forKey: .text)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finish_reason, forKey: .finish_reason)
    }
}

struct ChatMessageOut: Encodable {
    var role: String?
    var content: String?
}

struct ChatChoice: Encodable {
    var index = 0
    var message: ChatMessageOut?
    var delta: ChatMessageOut?
    var logprobs: String? = nil
    var finish_reason: String?

    func encode(to encoder: Encoder) throws {
        enum K: String, CodingKey { case index, message, delta, logprobs, finish_reason }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(index, forKey: .index)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encodeIfPresent(delta, forKey: .delta)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finish_reason, forKey: .finish_reason)
    }
}

/// A completion, chat completion, or one streamed chunk of either.
struct CompletionObject<Choice: Encodable>: Encodable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
    var balcony: BalconyReport?
}

struct ModelList: Encodable {
    struct Entry: Encodable {
        struct Info: Encodable {
            var layers: Int
            var exits: [Int]
            var context_length: Int
            var policy: String
            var target_token_ms: Double?
        }
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "balcony"
        var balcony: Info
    }
    var object = "list"
    var data: [Entry]
}

func encodeJSON<T: Encodable>(_ value: T) -> Data {
    let enc = JSONEncoder()
    enc.outputFormatting = [.withoutEscapingSlashes]
    return (try? enc.encode(value)) ?? Data("{}".utf8)
}
