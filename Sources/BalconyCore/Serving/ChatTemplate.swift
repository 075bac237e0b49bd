import Foundation

/// How a chat becomes a prompt: the model's own Jinja chat template (`chat_template` in
/// `tokenizer_config.json`, `tokenizer.chat_template` in a GGUF file) rendered as transformers'
/// `apply_chat_template` renders it, or, when the model has none or it does not parse, a natively
/// rendered `Family` recognized from the template's markers (docs/chat-templates.md).
public struct ChatTemplate: Sendable, Equatable {
    /// The parsed template; nil renders `family`.
    public let jinja: JinjaTemplate?
    /// The fallback format (also what `jinja` would be recognized as).
    public let family: Family
    /// `bos_token` and `eos_token` as the template sees them (the tokenizer's texts).
    public let bosToken: String
    public let eosToken: String

    public static let llama2 = ChatTemplate(family: .llama2)
    public static let llama3 = ChatTemplate(family: .llama3)
    public static let chatml = ChatTemplate(family: .chatml)
    public static let plain = ChatTemplate(family: .plain)

    public init(family: Family) {
        self.jinja = nil
        self.family = family
        self.bosToken = ""
        self.eosToken = ""
    }

    public init(jinja: JinjaTemplate, bosToken: String, eosToken: String) {
        self.jinja = jinja
        self.family = Family.recognize(jinja.source)
        self.bosToken = bosToken
        self.eosToken = eosToken
    }

    public static func == (a: ChatTemplate, b: ChatTemplate) -> Bool {
        a.family == b.family && a.jinja?.source == b.jinja?.source && a.bosToken == b.bosToken && a.eosToken == b.eosToken
    }

    /// The natively rendered format a template's markers suggest (no Jinja).
    public static func recognize(_ jinja: String?) -> ChatTemplate {
        ChatTemplate(family: Family.recognize(jinja))
    }

    /// The template for a model: its Jinja source parsed, or the recognized family with a warning
    /// saying why when it does not parse. `bos_token` and `eos_token` are `bosToken`/`eosToken` when
    /// given (tokenizer_config.json's, which is what transformers passes), else the texts of the
    /// tokenizer's BOS and (lowest) EOS ids.
    public static func load(source: String?, tokenizer: (any Tokenizer)?, bosToken: String? = nil,
                            eosToken: String? = nil) -> (template: ChatTemplate, warning: String?) {
        guard let source else { return (.plain, nil) }
        let bos = bosToken ?? tokenizer.flatMap { t in t.bosTokenId.map { t.piece(for: $0) } } ?? ""
        let eos = eosToken ?? tokenizer.flatMap { t in t.eosTokenIds.min().map { t.piece(for: $0) } } ?? ""
        do {
            return (ChatTemplate(jinja: try JinjaTemplate(source), bosToken: bos, eosToken: eos), nil)
        } catch {
            let family = Family.recognize(source)
            return (ChatTemplate(family: family),
                    "the model's chat template does not parse (\(error.localizedDescription)); using the built-in '\(family.rawValue)' format")
        }
    }

    /// A short name for logs: "jinja" or the family.
    public var name: String { jinja == nil ? family.rawValue : "jinja (\(family.rawValue)-like)" }

    /// The prompt text for `messages`. With a Jinja template this is exactly what transformers'
    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt=...)` returns; the
    /// families always end where the assistant's reply starts.
    /// - Throws: `JinjaError` (`raised` when the template rejects the messages).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        guard let jinja else { return family.render(messages) }
        return try render(jinja, messages: messages.map { ["role": $0.role, "content": $0.content] },
                          addGenerationPrompt: addGenerationPrompt)
    }

    /// Renders messages given as JSON objects (any fields a template reads, such as `tool_calls`).
    /// `variables` adds template variables, as `apply_chat_template`'s keyword arguments do
    /// (`tools`, `documents`, `date_string`); the four standard ones cannot be overridden.
    public func render(jsonMessages: [[String: Any]], addGenerationPrompt: Bool, variables: [String: Any] = [:]) throws -> String {
        guard let jinja else {
            return family.render(jsonMessages.map { ChatMessage(role: $0["role"] as? String ?? "", content: $0["content"] as? String ?? "") })
        }
        return try render(jinja, messages: jsonMessages, addGenerationPrompt: addGenerationPrompt, variables: variables)
    }

    /// Renders a chat given as JSON text: a list of messages, or an object with a `messages` list
    /// whose other keys become template variables (`tools`, `documents`, ...). Objects keep their
    /// key order, as Python's `json` does, so `tojson` prints them as transformers would.
    public func render(chatJSON data: Data, addGenerationPrompt: Bool) throws -> String {
        var variables: [String: JinjaValue] = [:]
        let messages: [JinjaValue]
        switch try JinjaJSONReader.parse(data) {
        case .list(let list):
            messages = list
        case .dict(let d):
            guard case .list(let list)? = d["messages"] else { throw JinjaError.runtime("the chat has no 'messages' list", line: 0) }
            messages = list
            for k in d.keys where k != "messages" { variables[k] = d[k] }
        default:
            throw JinjaError.runtime("a chat is a list of messages or an object with a 'messages' list", line: 0)
        }
        guard let jinja else {
            return family.render(messages.map { m in
                guard case .dict(let d) = m else { return ChatMessage(role: "", content: "") }
                return ChatMessage(role: d["role"]?.rendered ?? "", content: d["content"]?.rendered ?? "")
            })
        }
        variables["messages"] = .list(messages)
        variables["add_generation_prompt"] = .bool(addGenerationPrompt)
        variables["bos_token"] = .string(bosToken)
        variables["eos_token"] = .string(eosToken)
        return try jinja.render(values: variables)
    }

    private func render(_ jinja: JinjaTemplate, messages: [[String: Any]], addGenerationPrompt: Bool,
                        variables: [String: Any] = [:]) throws -> String {
        let standard: [String: Any] = ["messages": messages, "add_generation_prompt": addGenerationPrompt,
                                       "bos_token": bosToken, "eos_token": eosToken]
        return try jinja.render(variables.merging(standard) { _, s in s })
    }

    /// Prompt ids for `messages`, ready for generation. The text is encoded with special-token
    /// parsing (templates write their markers and often `bos_token` as text); BOS is prepended when
    /// the format or the tokenizer wants it and the text did not already produce it, so it is never doubled.
    /// - Throws: `JinjaError` when the template rejects the messages.
    public func encode(_ messages: [ChatMessage], tokenizer: any Tokenizer) throws -> [Int] {
        let text = try render(messages)
        var ids = tokenizer.encode(text, parseSpecial: jinja != nil || family.usesSpecialTokens)
        let wantsBOS = (jinja == nil && family.wantsBOS) || tokenizer.addsBOS
        if wantsBOS, let b = tokenizer.bosTokenId, ids.first != b { ids.insert(b, at: 0) }
        return ids
    }

    /// `bos_token` and `eos_token` of a folder's `tokenizer_config.json` (a string or `{"content": ...}`).
    public static func specialTokens(inDirectory directory: URL) -> (bos: String?, eos: String?) {
        let url = directory.appendingPathComponent("tokenizer_config.json")
        guard let data = FileManager.default.contents(atPath: url.path),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return (nil, nil) }
        func text(_ v: Any?) -> String? { v as? String ?? (v as? [String: Any])?["content"] as? String }
        return (text(root["bos_token"]), text(root["eos_token"]))
    }

    /// The template text a model folder carries: `tokenizer_config.json`'s `chat_template` (a
    /// string, or a list of named templates whose "default" is used), looked for in `directory`.
    public static func jinja(inDirectory directory: URL) -> String? {
        let url = directory.appendingPathComponent("tokenizer_config.json")
        guard let data = FileManager.default.contents(atPath: url.path),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        if let s = root["chat_template"] as? String { return s }
        if let list = root["chat_template"] as? [[String: Any]] {
            let named = list.first { $0["name"] as? String == "default" } ?? list.first
            return named?["template"] as? String
        }
        return nil
    }
}
