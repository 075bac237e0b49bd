import ArgumentParser
import BalconyCore
import Foundation

/// Where a command finds the chat template: `--chat-template FILE` (a Jinja file, or a
/// tokenizer_config.json whose `chat_template` is used), else the model's GGUF metadata, else a
/// `tokenizer_config.json` in the given folders.
enum ChatTemplateSource {
    static func text(override: String?, gguf: GGUFFile?, folders: [URL]) throws -> String? {
        if let override {
            let url = URL(fileURLWithPath: override)
            if url.pathExtension.lowercased() == "json" {
                guard let t = ChatTemplate.jinja(inDirectory: url.deletingLastPathComponent()),
                      url.lastPathComponent == "tokenizer_config.json" else {
                    throw ValidationError("\(override) is not a tokenizer_config.json with a chat_template")
                }
                return t
            }
            guard let data = FileManager.default.contents(atPath: url.path) else { throw ValidationError("cannot read \(override)") }
            return String(decoding: data, as: UTF8.self)
        }
        if let g = gguf, let t = g.metadata["tokenizer.chat_template"]?.stringValue { return t }
        return folders.lazy.compactMap { ChatTemplate.jinja(inDirectory: $0) }.first
    }

    /// The folder a path names, or the folder a file is in.
    static func folder(of url: URL) -> URL {
        (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true ? url : url.deletingLastPathComponent()
    }

    /// Parses the template, printing the fallback warning when it does not parse. `bos_token` and
    /// `eos_token` come from the first tokenizer_config.json in `folders` that names them, else from
    /// a GGUF file's BOS/EOS ids, else from the tokenizer.
    static func load(_ text: String?, tokenizer: (any Tokenizer)?, gguf: GGUFFile?, folders: [URL]) -> ChatTemplate {
        var bos: String?, eos: String?
        for f in folders {
            let t = ChatTemplate.specialTokens(inDirectory: f)
            bos = bos ?? t.bos
            eos = eos ?? t.eos
        }
        if let g = gguf, let tok = tokenizer {
            bos = bos ?? g.metadata["tokenizer.ggml.bos_token_id"]?.intValue.map { tok.piece(for: $0) }
            eos = eos ?? g.metadata["tokenizer.ggml.eos_token_id"]?.intValue.map { tok.piece(for: $0) }
        }
        let (template, warning) = ChatTemplate.load(source: text, tokenizer: tokenizer, bosToken: bos, eosToken: eos)
        if let warning { printError("warning: \(warning)") }
        return template
    }
}
