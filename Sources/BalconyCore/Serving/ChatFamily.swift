import Foundation

/// The chat formats Balcony renders natively: the fallback for a model whose Jinja template does
/// not parse (recognized by its markers), and for models without a template (`plain`).
extension ChatTemplate {
    public enum Family: String, Sendable, CaseIterable {
        /// `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...`
        case llama2
        /// `<|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>...`
        case llama3
        /// `<|im_start|>{role}\n{content}<|im_end|>\n...<|im_start|>assistant\n`
        case chatml
        /// The default for models without a known template: `System: ...`, `User: ...`,
        /// `Assistant: ...` lines separated by newlines, ending with `Assistant:`.
        case plain

        /// Recognizes a Jinja chat template by its markers; `plain` when there is none or it is unknown.
        public static func recognize(_ jinja: String?) -> Family {
            guard let t = jinja else { return .plain }
            if t.contains("<|start_header_id|>") { return .llama3 }
            if t.contains("<|im_start|>") { return .chatml }
            if t.contains("[INST]") { return .llama2 }
            return .plain
        }

        /// Whether the rendered text must be encoded with special-token parsing (the template's markers
        /// are control tokens).
        public var usesSpecialTokens: Bool { self != .plain }

        /// Whether the format starts with BOS whatever the tokenizer says (LLaMA 2 and 3 do).
        var wantsBOS: Bool { self == .llama2 || self == .llama3 }

        /// The prompt text for `messages`, ending where the assistant's reply starts. BOS is not part of
        /// the text: the caller prepends it as the tokenizer does (`encodeForModel`).
        public func render(_ messages: [ChatMessage]) -> String {
            switch self {
            case .llama3:
                var s = ""
                for m in messages { s += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content.trimmingCharacters(in: .whitespacesAndNewlines))<|eot_id|>" }
                return s + "<|start_header_id|>assistant<|end_header_id|>\n\n"
            case .chatml:
                var s = ""
                for m in messages { s += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
                return s + "<|im_start|>assistant\n"
            case .llama2:
                // Meta's format: the system prompt goes inside the first user turn.
                var s = ""
                var system: String?
                var firstTurn = true
                for m in messages {
                    switch m.role {
                    case "system": system = m.content
                    case "assistant": s += " \(m.content.trimmingCharacters(in: .whitespaces)) </s>"
                    default:
                        var user = m.content.trimmingCharacters(in: .whitespaces)
                        if let sys = system, firstTurn { user = "<<SYS>>\n\(sys)\n<</SYS>>\n\n" + user }
                        s += (firstTurn ? "" : "<s>") + "[INST] \(user) [/INST]"
                        firstTurn = false
                        system = nil
                    }
                }
                return s
            case .plain:
                var lines: [String] = []
                for m in messages {
                    let role = m.role.prefix(1).uppercased() + m.role.dropFirst()
                    lines.append("\(role): \(m.content)")
                }
                lines.append("Assistant:")
                return lines.joined(separator: "\n")
            }
        }
    }
}
