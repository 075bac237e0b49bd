import Foundation
import Testing
@testable import BalconyCore

/// The prompts transformers' `apply_chat_template` renders for the chat templates of LLaMA 2 and
/// 3 and 3.1, Mistral, Qwen2 and 2.5 (both also with tools), SmolLM2, Phi-3, Zephyr, Gemma and a template using every supported
/// construct (scripts/make_chat_template_fixtures.py), reproduced byte for byte.
struct ChatTemplateCase: CustomTestStringConvertible, Sendable {
    let template: String
    let messages: Int
    let addGenerationPrompt: Bool
    let tools: Bool
    let expected: String?
    let error: String?
    var testDescription: String { "\(template) messages#\(messages) agp=\(addGenerationPrompt)\(tools ? " tools" : "")" }

    struct Fixture: @unchecked Sendable {
        let templates: [String: (source: String, bos: String, eos: String)]
        let messages: [[[String: Any]]]
        let tools: [Any]
        let cases: [ChatTemplateCase]
    }

    static let fixture: Fixture = {
        let url = TokenizerAssets.packageRoot.appendingPathComponent("Tests/BalconyCoreTests/Fixtures/chat_templates/cases.json")
        guard let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let t = root["templates"] as? [String: [String: String]],
              let m = root["messages"] as? [[[String: Any]]],
              let c = root["cases"] as? [[String: Any]] else { return Fixture(templates: [:], messages: [], tools: [], cases: []) }
        return Fixture(
            templates: t.mapValues { ($0["template"] ?? "", $0["bos_token"] ?? "", $0["eos_token"] ?? "") },
            messages: m,
            tools: root["tools"] as? [Any] ?? [],
            cases: c.map {
                ChatTemplateCase(template: $0["template"] as? String ?? "", messages: $0["messages"] as? Int ?? -1,
                                 addGenerationPrompt: $0["add_generation_prompt"] as? Bool ?? false, tools: $0["tools"] as? Bool ?? false,
                                 expected: $0["expected"] as? String, error: $0["error"] as? String)
            })
    }()
}

@Suite struct ChatTemplateFixtureTests {
    @Test func fixtureIsPresent() {
        let f = ChatTemplateCase.fixture
        #expect(f.cases.count == 168)
        #expect(!f.tools.isEmpty)
        for name in ["llama2", "llama3", "llama3.1", "mistral-v0.1", "mistral-v0.3", "qwen2", "qwen2.5", "smollm2", "phi3", "zephyr", "gemma"] {
            #expect(f.templates[name] != nil, "missing template \(name)")
        }
    }

    @Test(arguments: ChatTemplateCase.fixture.cases)
    func rendersLikeTransformers(_ c: ChatTemplateCase) throws {
        let f = ChatTemplateCase.fixture
        let t = try #require(f.templates[c.template])
        let template = ChatTemplate(jinja: try JinjaTemplate(t.source), bosToken: t.bos, eosToken: t.eos)
        let messages = f.messages[c.messages]
        let vars: [String: Any] = c.tools ? ["tools": f.tools] : [:]
        if let expected = c.expected {
            let got = try template.render(jsonMessages: messages, addGenerationPrompt: c.addGenerationPrompt, variables: vars)
            #expect(got == expected)
        } else {
            #expect(throws: JinjaError.raised(c.error ?? "")) {
                try template.render(jsonMessages: messages, addGenerationPrompt: c.addGenerationPrompt, variables: vars)
            }
        }
    }

    /// The Jinja path and the fallback family agree where the family is exact (ChatML).
    @Test func smolLM2TemplateUsesSpecialTokensAndNoExtraBOS() throws {
        let t = try #require(ChatTemplateCase.fixture.templates["smollm2"])
        let template = ChatTemplate(jinja: try JinjaTemplate(t.source), bosToken: t.bos, eosToken: t.eos)
        #expect(template.family == .chatml)
        let text = try template.render([ChatMessage(role: "user", content: "Hi")])
        #expect(text.hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
    }
}
