import ArgumentParser
import BalconyCore
import Foundation

struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Print the prompt a model's chat template makes of a list of messages.",
        discussion: """
        Renders the Jinja chat template of MODEL (tokenizer.chat_template in a GGUF file, chat_template in
        tokenizer_config.json) as transformers' apply_chat_template(tokenize=False) does, and prints it exactly,
        without a trailing newline. Only the tokenizer is loaded, never the weights. A template that does not
        parse falls back to the built-in format it resembles, with a warning. See docs/chat-templates.md.
        """)

    @Argument(help: "A model (GGUF file, Hugging Face folder, hf:OWNER/NAME) or its tokenizer folder. Default: stories260K.")
    var model: String?
    @Option(help: "JSON file: a list of messages, or an object with a 'messages' list and other template variables ('tools').")
    var messages: String
    @Flag(help: "End with the start of an assistant turn (add_generation_prompt).") var addGenerationPrompt = false
    @Option(help: "Jinja template file (or a tokenizer_config.json) to use instead of the model's.") var chatTemplate: String?
    @Option(help: "Tokenizer file or folder, for bos_token/eos_token and the template beside it.") var tokenizer: String?

    func run() async throws {
        try await reportingErrors {
            guard let chat = FileManager.default.contents(atPath: messages) else { throw ValidationError("cannot read \(messages)") }
            let path = try await ModelPaths.resolve(model ?? DefaultModel.path)
            let url = URL(fileURLWithPath: path)
            let gguf = url.pathExtension.lowercased() == "gguf" ? try GGUFFile(url: url) : nil
            var folders = [ChatTemplateSource.folder(of: url)]
            var tok: (any Tokenizer)?
            if let t = tokenizer {
                let tu = URL(fileURLWithPath: try await ModelPaths.resolve(t))
                folders.insert(ChatTemplateSource.folder(of: tu), at: 0)
                tok = try TokenizerLoader.load(url: tu)
            } else if let gguf {
                tok = try TokenizerLoader.load(gguf: gguf)
            } else {
                tok = try? TokenizerLoader.load(url: url)
            }
            let text = try ChatTemplateSource.text(override: chatTemplate, gguf: gguf, folders: folders)
            if text == nil { printError("warning: \(path) has no chat template; using the plain transcript format") }
            let template = ChatTemplateSource.load(text, tokenizer: tok, gguf: gguf, folders: folders)
            writeOut(try template.render(chatJSON: chat, addGenerationPrompt: addGenerationPrompt))
        }
    }
}
