import Foundation
import Testing

/// `balcony template` prints exactly what transformers' `apply_chat_template` renders
/// (Fixtures/chat_templates/cases.json, from scripts/make_chat_template_fixtures.py).
@Suite struct TemplateCLITests {
    struct Fixture {
        var templates: [String: [String: String]]
        var messages: [Any]
        var tools: [Any]
        var cases: [[String: Any]]

        static func load() throws -> Fixture {
            let url = CLIRunner.packageRoot.appendingPathComponent("Tests/BalconyCoreTests/Fixtures/chat_templates/cases.json")
            let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            return Fixture(templates: try #require(root["templates"] as? [String: [String: String]]),
                           messages: try #require(root["messages"] as? [Any]),
                           tools: try #require(root["tools"] as? [Any]),
                           cases: try #require(root["cases"] as? [[String: Any]]))
        }

        func expected(_ template: String, _ messages: Int, _ agp: Bool, tools: Bool = false) throws -> String {
            let c = try #require(cases.first {
                $0["template"] as? String == template && $0["messages"] as? Int == messages && $0["add_generation_prompt"] as? Bool == agp
                    && $0["tools"] as? Bool == tools
            })
            return try #require(c["expected"] as? String)
        }
    }

    /// A GGUF vocabulary (bos "<s>", eos "</s>") with LLaMA 2's template given by --chat-template.
    @Test func ggufWithTemplateFile() throws {
        let f = try Fixture.load()
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = dir.appendingPathComponent("llama2.jinja")
        try Data(try #require(f.templates["llama2"]?["template"]).utf8).write(to: template)
        let messages = dir.appendingPathComponent("messages.json")
        try JSONSerialization.data(withJSONObject: f.messages[2], options: .sortedKeys).write(to: messages)
        let gguf = CLIRunner.shared.appendingPathComponent("tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf").path
        let r = try CLIRunner.run(["template", gguf, "--messages", messages.path, "--chat-template", template.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == (try f.expected("llama2", 2, false)))
    }

    /// A model folder's tokenizer_config.json; the messages file as {"messages": [...]}.
    @Test func folderTemplateWithGenerationPrompt() throws {
        let f = try Fixture.load()
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config: [String: Any] = ["chat_template": try #require(f.templates["smollm2"]?["template"])]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let messages = dir.appendingPathComponent("m.json")
        try JSONSerialization.data(withJSONObject: ["messages": f.messages[3]], options: .sortedKeys).write(to: messages)
        let r = try CLIRunner.run(["template", dir.path, "--messages", messages.path, "--add-generation-prompt"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == (try f.expected("smollm2", 3, true)))
    }

    /// The chat file's other keys are template variables: Qwen2.5 lists the tools (tojson).
    @Test func toolsFromTheChatFile() throws {
        let f = try Fixture.load()
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = dir.appendingPathComponent("qwen.jinja")
        try Data(try #require(f.templates["qwen2.5"]?["template"]).utf8).write(to: template)
        let chat = dir.appendingPathComponent("chat.json")
        // Sorted keys: the order the fixture's tool schema was written in, which tojson reproduces.
        try JSONSerialization.data(withJSONObject: ["messages": f.messages[3], "tools": f.tools], options: .sortedKeys).write(to: chat)
        let r = try CLIRunner.run(["template", dir.path, "--messages", chat.path, "--chat-template", template.path,
                                   "--add-generation-prompt"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == (try f.expected("qwen2.5", 3, true, tools: true)))
    }

    @Test func rejectedMessagesAndBrokenTemplates() throws {
        let f = try Fixture.load()
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let messages = dir.appendingPathComponent("m.json")
        try JSONSerialization.data(withJSONObject: f.messages[4], options: .sortedKeys).write(to: messages)
        // Gemma's template refuses an assistant turn first: an error, not a prompt.
        let gemma = dir.appendingPathComponent("gemma.jinja")
        try Data(try #require(f.templates["gemma"]?["template"]).utf8).write(to: gemma)
        let r = try CLIRunner.run(["template", dir.path, "--messages", messages.path, "--chat-template", gemma.path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("Conversation roles must alternate"), "\(r.stderr)")
        // A template that does not parse falls back to the format it resembles, with a warning.
        let broken = dir.appendingPathComponent("broken.jinja")
        try Data("{% for m in messages %}<|im_start|>{{ m.role }".utf8).write(to: broken)
        let b = try CLIRunner.run(["template", dir.path, "--messages", messages.path, "--chat-template", broken.path])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.contains("warning") && b.stderr.contains("chatml"), "\(b.stderr)")
        #expect(b.stdout.hasPrefix("<|im_start|>assistant\nI speak first.<|im_end|>\n"))
    }
}
