import Foundation
import Testing
@testable import BalconyCore

/// Errors and bounds: a broken or hostile template gives a clear error, never a crash or a hang.
@Suite struct JinjaTemplateTests {
    func render(_ source: String, _ vars: [String: Any] = [:], maxOutputBytes: Int = 4 << 20) throws -> String {
        try JinjaTemplate(source).render(vars, maxOutputBytes: maxOutputBytes)
    }

    @Test(arguments: [
        ("{{ x", "unterminated '{{'"),
        ("{% if x %}a", "'{% endif %}' before the end of the template"),
        ("{% for x in y %}a{% endif %}", "'endif' where"),
        ("{% endfor %}", "without a matching opening tag"),
        ("{{ 'abc }}", "unterminated string"),
        ("{# comment", "unterminated comment"),
        ("{{ (1 + 2 }}", "unbalanced"),
        ("{% macro m() %}{% endmacro %}", "unsupported tag 'macro'"),
        ("{{ a b }}", "unexpected 'b'"),
        ("{{ x | }}", "filter name"),
    ])
    func syntaxErrorsNameTheProblem(_ source: String, _ fragment: String) {
        do {
            _ = try JinjaTemplate(source)
            Issue.record("\(source) parsed")
        } catch let e as JinjaError {
            guard case .syntax(let message, _) = e else { Issue.record("\(e) is not a syntax error"); return }
            #expect(message.contains(fragment), "\(message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func deepNestingIsRefused() throws {
        let deepIf = String(repeating: "{% if true %}", count: 500) + "x" + String(repeating: "{% endif %}", count: 500)
        let deepParens = "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}"
        let deepNot = "{{ " + String(repeating: "not ", count: 5000) + "x }}"
        for source in [deepIf, deepParens, deepNot] {
            #expect(throws: JinjaError.self) { try JinjaTemplate(source) }
        }
        // Nesting within the bound works.
        let ok = String(repeating: "{% if true %}", count: 20) + "x" + String(repeating: "{% endif %}", count: 20)
        #expect(try render(ok) == "x")
    }

    @Test func hugeLoopsAndOutputsStop() {
        #expect(throws: JinjaError.self) { try render("{% for i in range(1000000000) %}x{% endfor %}") }
        #expect(throws: JinjaError.self) {
            try render("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}")
        }
        #expect(throws: JinjaError.limit("the rendered prompt exceeds 1000 bytes")) {
            try render("{% for i in range(100) %}0123456789abcdef{% endfor %}", maxOutputBytes: 1000)
        }
        #expect(throws: JinjaError.self) { try render("{{ 'x' * 1000000000000 }}") }
        #expect(throws: JinjaError.self) {
            try render("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}")
        }
    }

    @Test func runtimeErrors() {
        #expect(throws: JinjaError.raised("no")) { try render("{{ raise_exception('no') }}") }
        #expect(throws: JinjaError.self) { try render("{{ x.y }}") }           // attribute of undefined
        #expect(throws: JinjaError.self) { try render("{{ 'a' + 1 }}") }
        #expect(throws: JinjaError.self) { try render("{{ x | nosuchfilter }}") }
        #expect(throws: JinjaError.self) { try render("{{ 1 // 0 }}") }
        #expect(throws: JinjaError.self) { try render("{% break %}") }
    }

    @Test func whitespaceControlFollowsTransformers() throws {
        // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before one.
        #expect(try render("{% if true %}\n  a\n  {% endif %}\nb") == "  a\nb")
        #expect(try render("a  {%- if true -%}  b  {%- endif %}") == "ab")
        #expect(try render("{{ 'x' }}\n{{ 'y' }}") == "x\ny")
        #expect(try render("a {%+ if true %}b{% endif %}") == "a b")
    }

    @Test func pythonSemantics() throws {
        #expect(try render("{{ [1, 'a', none, true, 1.5] }}") == "[1, 'a', None, True, 1.5]")
        #expect(try render("{{ 1 == 1.0 }} {{ 'b' > 'a' }} {{ -7 // 2 }} {{ -7 % 3 }}") == "True True -4 2")
        #expect(try render("{{ '  a b  '.split() }} {{ 'a'.startswith(('x', 'a')) }}") == "['a', 'b'] True")
        #expect(try render("{{ m.content }}", ["m": ["content": "hi"]]) == "hi")
        #expect(try render("{{ x | tojson }}", ["x": ["a": [1, 2], "b": "é\"\n"]]) == #"{"a": [1, 2], "b": "é\"\n"}"#)
    }

    /// JSON objects keep their key order (Python's json.dumps prints insertion order), and the
    /// chat object's other keys become variables.
    @Test func chatJSONKeepsKeyOrder() throws {
        let t = ChatTemplate(jinja: try JinjaTemplate("{{ tools[0] | tojson }}|{{ messages[0] | tojson }}|{{ add_generation_prompt }}"),
                             bosToken: "", eosToken: "")
        let chat = #"{"tools": [{"type": "function", "function": {"name": "f", "description": "d\u00e9\ud83d\ude00"}}], "#
            + #""messages": [{"role": "user", "content": "x", "b": [1, 2.5, null, true]}]}"#
        #expect(try t.render(chatJSON: Data(chat.utf8), addGenerationPrompt: true)
                == #"{"type": "function", "function": {"name": "f", "description": "dé😀"}}|{"role": "user", "content": "x", "b": [1, 2.5, null, true]}|True"#)
        #expect(throws: JinjaError.self) { try t.render(chatJSON: Data("[{".utf8), addGenerationPrompt: false) }
        #expect(throws: JinjaError.self) { try t.render(chatJSON: Data(#"{"tools": []}"#.utf8), addGenerationPrompt: false) }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JinjaError.self) { try t.render(chatJSON: Data(deep.utf8), addGenerationPrompt: false) }
    }

    @Test func unparsableTemplateFallsBackWithAWarning() {
        let (t, warning) = ChatTemplate.load(source: "{% macro x() %}<|im_start|>{% endmacro %}", tokenizer: nil)
        #expect(t == .chatml)
        #expect(warning?.contains("unsupported tag 'macro'") == true)
        let (none, noWarning) = ChatTemplate.load(source: nil, tokenizer: nil)
        #expect(none == .plain && noWarning == nil)
    }
}
