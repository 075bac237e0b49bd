import Foundation
import Testing

/// `balcony serve --chat-template FILE`: chats are rendered by the Jinja template, and a template's
/// `raise_exception` answers an OpenAI-style 400 naming `messages`.
@Suite struct ServeTemplateCLITests {
    @Test func chatUsesTheJinjaTemplateAndItsRefusals() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = dir.appendingPathComponent("t.jinja")
        try Data("""
        {%- for m in messages %}
            {%- if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}
            {{- m.role | upper }}: {{ m.content | trim }}
        {% endfor %}
        {%- if add_generation_prompt %}ASSISTANT:{% endif %}
        """.utf8).write(to: template)
        let server = try ServerProcess(["--chat-template", template.path])
        defer { server.stop() }
        #expect(server.stderr.contains("chat template jinja"), "\(server.stderr)")
        let ok = try server.curl("/v1/chat/completions",
                                 body: #"{"messages": [{"role": "user", "content": " Once upon a time "}], "max_tokens": 2}"#)
        #expect(ok.status == 200, "\(ok.body)")
        // "USER: Once upon a time\nASSISTANT:" in stories260K's vocabulary is more than a handful of tokens.
        let usage = ok.json?["usage"] as? [String: Any]
        #expect((usage?["prompt_tokens"] as? Int ?? 0) > 8, "\(ok.body)")
        let refused = try server.curl("/v1/chat/completions",
                                      body: #"{"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]}"#)
        #expect(refused.status == 400, "\(refused.body)")
        #expect(refused.errorParam == "messages")
        #expect(refused.errorMessage?.contains("System role not supported") == true, "\(refused.body)")
    }
}
