import BalconyCore
import Foundation

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, Sendable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, param: param, code: code)
    }

    struct Body: Encodable {
        struct Inner: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            func encode(to encoder: Encoder) throws {
                enum K: String, CodingKey { case message, type, param, code }
                var c = encoder.container(keyedBy: K.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)  // OpenAI sends explicit nulls
                try c.encode(code, forKey: .code)
            }
        }
        var error: Inner
    }

    var body: Body { Body(error: .init(message: message, type: type, param: param, code: code)) }
}

/// A JSON value that may be one thing or a list of them (`"stop": "\n"` or `["\n", "."]`).
enum OneOrMany<T: Decodable & Sendable>: Decodable, Sendable {
    case one(T)
    case many([T])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(T.self) { self = .one(v); return }
        self = .many(try c.decode([T].self))
    }

    var all: [T] {
        switch self {
        case let .one(v): return [v]
        case let .many(v): return v
        }
    }
}

/// `prompt`: text, or token ids (one prompt only: `n = 1`, no batches of prompts).
enum PromptInput: Decodable, Sendable {
    case text(String)
    case tokens([Int])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .text(s); return }
        if let ids = try? c.decode([Int].self) { self = .tokens(ids); return }
        if let list = try? c.decode([String].self) {
            guard list.count == 1 else { throw APIError.invalid("prompt lists must hold exactly one prompt (n = 1 per request)", param: "prompt") }
            self = .text(list[0]); return
        }
        if let list = try? c.decode([[Int]].self) {
            guard list.count == 1 else { throw APIError.invalid("prompt lists must hold exactly one prompt (n = 1 per request)", param: "prompt") }
            self = .tokens(list[0]); return
        }
        throw APIError.invalid("prompt must be a string or a list of token ids", param: "prompt")
    }
}

/// The `balcony` extension field: `{"exit": K | "full"}`, `{"budget": F}` or `{"latency_ms": X}`.
struct BalconyField: Decodable, Sendable {
    var exit: String?
    var budget: Double?
    var latencyMs: Double?

    enum CodingKeys: String, CodingKey { case exit, budget, latencyMs = "latency_ms" }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let k = try? c.decodeIfPresent(Int.self, forKey: .exit) {
            exit = String(k)
        } else {
            exit = try c.decodeIfPresent(String.self, forKey: .exit)
        }
        budget = try c.decodeIfPresent(Double.self, forKey: .budget)
        latencyMs = try c.decodeIfPresent(Double.self, forKey: .latencyMs)
    }
}

struct StreamOptions: Decodable, Sendable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// The fields of completion and chat requests Balcony reads; any other field is ignored, as
/// OpenAI's API does.
struct GenerationFields: Decodable, Sendable {
    var model: String?
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var seed: Int?
    var stop: OneOrMany<String>?
    var n: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var balcony: BalconyField?

    enum CodingKeys: String, CodingKey {
        case model, maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", temperature, topP = "top_p", seed, stop, n
        case stream, streamOptions = "stream_options", balcony
    }
}

struct CompletionBody: Decodable, Sendable {
    var prompt: PromptInput?
}

/// A chat message's `content`: a string, or a list of parts of which the text ones are used.
struct MessageContent: Decodable, Sendable {
    var text: String

    struct Part: Decodable { var type: String; var text: String? }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { text = ""; return }
        if let s = try? c.decode(String.self) { text = s; return }
        guard let parts = try? c.decode([Part].self) else {
            throw APIError.invalid("message content must be a string or a list of content parts", param: "messages")
        }
        for p in parts where p.type != "text" {
            throw APIError.invalid("content parts of type '\(p.type)' are not supported; send text", param: "messages")
        }
        text = parts.compactMap(\.text).joined()
    }
}

struct ChatBody: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var role: String
        var content: MessageContent?
    }
    var messages: [Message]?
}

/// Limits the HTTP layer enforces before work reaches the engine.
public struct RequestLimits: Sendable {
    /// Largest request body, bytes (413 beyond).
    public var maxBodyBytes: Int
    /// Longest prompt, tokens (400 beyond).
    public var maxPromptTokens: Int
    /// Largest `max_tokens` (400 beyond); also the default for chat requests.
    public var maxTokens: Int
    /// Stop sequences per request at most (OpenAI allows 4).
    public var maxStopSequences = 4

    public init(maxBodyBytes: Int, maxPromptTokens: Int, maxTokens: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxPromptTokens = maxPromptTokens
        self.maxTokens = maxTokens
    }
}

/// Decodes a request body, turning malformed JSON and mistyped fields into 400s that name the field.
func decodeBody<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
    guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
        throw APIError.invalid("the request body is not a JSON object; send Content-Type: application/json with a JSON body", code: "invalid_json")
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let e as APIError {
        throw e
    } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx), let DecodingError.dataCorrupted(ctx) {
        let path = ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        throw APIError.invalid("invalid value for '\(path)': \(ctx.debugDescription)", param: path)
    } catch let DecodingError.keyNotFound(key, ctx) {
        let path = (ctx.codingPath + [key]).map(\.stringValue).joined(separator: ".")
        throw APIError.invalid("missing required field '\(path)'", param: path)
    } catch {
        throw APIError.invalid("invalid request: \(error)")
    }
}
