import BalconyCore
import Foundation

/// The two OpenAI response shapes: `text_completion` (choices with `text`) and `chat.completion`
/// (choices with `message`, streamed as `chat.completion.chunk` with `delta`).
enum ResponseStyle: Sendable {
    case completion(id: String, created: Int, model: String)
    case chat(id: String, created: Int, model: String)

    private var header: (id: String, created: Int, model: String) {
        switch self {
        case let .completion(id, created, model), let .chat(id, created, model): return (id, created, model)
        }
    }

    private func object<C: Encodable>(_ kind: String, _ choices: [C], usage: Usage? = nil, balcony: BalconyReport? = nil) -> CompletionObject<C> {
        let h = header
        return CompletionObject(id: h.id, object: kind, created: h.created, model: h.model, choices: choices, usage: usage, balcony: balcony)
    }

    /// The whole response of a request that does not stream.
    func final(text: String, completion c: ServingCompletion, report: BalconyReport) -> Data {
        let reason = c.finishReason.rawValue
        switch self {
        case .completion:
            return encodeJSON(object("text_completion", [CompletionChoice(text: text, finish_reason: reason)], usage: Usage(c), balcony: report))
        case .chat:
            let choice = ChatChoice(message: ChatMessageOut(role: "assistant", content: text), finish_reason: reason)
            return encodeJSON(object("chat.completion", [choice], usage: Usage(c), balcony: report))
        }
    }

    /// The first chunk of a chat stream carries the assistant role; completions have none.
    func opening() -> Data? {
        guard case .chat = self else { return nil }
        return encodeJSON(object("chat.completion.chunk", [ChatChoice(delta: ChatMessageOut(role: "assistant", content: ""), finish_reason: nil)]))
    }

    /// A chunk of streamed text, with the exit that produced it.
    func chunk(text: String, exit: String) -> Data {
        let report = BalconyReport(exit: exit)
        switch self {
        case .completion:
            return encodeJSON(object("text_completion", [CompletionChoice(text: text, finish_reason: nil)], balcony: report))
        case .chat:
            return encodeJSON(object("chat.completion.chunk", [ChatChoice(delta: ChatMessageOut(content: text), finish_reason: nil)], balcony: report))
        }
    }

    /// The chunk that carries `finish_reason` (and the exits used, unless a usage chunk follows).
    func closing(completion c: ServingCompletion, report: BalconyReport?) -> Data {
        let reason = c.finishReason.rawValue
        switch self {
        case .completion:
            return encodeJSON(object("text_completion", [CompletionChoice(text: "", finish_reason: reason)], balcony: report))
        case .chat:
            return encodeJSON(object("chat.completion.chunk", [ChatChoice(delta: ChatMessageOut(), finish_reason: reason)], balcony: report))
        }
    }

    /// `stream_options.include_usage`: a last chunk with no choices, the usage and the exits used.
    func usageChunk(completion c: ServingCompletion, report: BalconyReport) -> Data {
        switch self {
        case .completion:
            return encodeJSON(object("text_completion", [CompletionChoice](), usage: Usage(c), balcony: report))
        case .chat:
            return encodeJSON(object("chat.completion.chunk", [ChatChoice](), usage: Usage(c), balcony: report))
        }
    }
}
