import Foundation
import Testing

/// `balcony serve` end to end: the real server on a loopback port, driven by the official `openai`
/// Python client and by curl.
@Suite struct ServeCLITests {
    static func python(_ args: [String]) throws -> [String: Any] {
        let r = try CLIRunner.run([ServerProcess.clientScript] + args, program: "python3")
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            Issue.record("openai client failed (status \(r.status)): \(r.stderr.suffix(3000)) — install it with 'pip install openai'")
            return [:]
        }
        return obj
    }

    @Test func openAIClientCompletesChatsAndStreams() throws {
        let server = try ServerProcess(["--api-key", "sk-test"])
        defer { server.stop() }
        let out = try Self.python([server.baseURL + "/v1", "sk-test", "basic"])
        #expect(out["models"] as? [String] == ["stories260K"])
        let c = out["completion"] as? [String: Any] ?? [:]
        #expect(c["object"] as? String == "text_completion")
        #expect(c["finish_reason"] as? String == "length")
        #expect((c["usage"] as? [String: Any])?["completion_tokens"] as? Int == 12)
        #expect(((c["balcony"] as? [String: Any])?["exits"] as? [[String: Any]])?.first?["exit"] as? String == "full")
        // The server's greedy text is `balcony generate`'s.
        let cli = try CLIRunner.run(["generate", CLIRunner.stories, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "12"])
        #expect(c["text"] as? String == cli.stdout)
        let s = out["completion_stream"] as? [String: Any] ?? [:]
        #expect(s["text"] as? String == c["text"] as? String)
        #expect(s["finish_reason"] as? String == "length")
        let chat = out["chat"] as? [String: Any] ?? [:]
        #expect(chat["object"] as? String == "chat.completion" && chat["role"] as? String == "assistant")
        #expect((chat["balcony"] as? [String: Any])?["exit"] as? String == "3")
        let cs = out["chat_stream"] as? [String: Any] ?? [:]
        #expect(cs["content"] as? String == chat["content"] as? String)
        #expect(cs["roles"] as? [String] == ["assistant"])
        let chatTokens = (chat["usage"] as? [String: Any])?["completion_tokens"] as? Int
        #expect(chatTokens == 10 && (cs["usage"] as? [String: Any])?["completion_tokens"] as? Int == chatTokens)
        #expect((cs["balcony"] as? [String: Any])?["exit"] as? String == "3")
        let bad = out["bad_request"] as? [String: Any]
        #expect(bad?["status"] as? Int == 400 && bad?["param"] as? String == "temperature")
    }

    @Test func errorPathsAnswerOpenAIStyleErrors() throws {
        let server = try ServerProcess(["--api-key", "secret", "--max-body-bytes", "2048", "--max-prompt-tokens", "64",
                                        "--max-tokens-limit", "100"])
        defer { server.stop() }
        let auth = ["Content-Type": "application/json", "Authorization": "Bearer secret"]
        let ok = #"{"prompt": "Hi", "max_tokens": 3}"#
        // 401 without or with a wrong key; /health needs none.
        var r = try server.curl("/v1/completions", body: ok)
        #expect(r.status == 401 && (r.json?["error"] as? [String: Any])?["code"] as? String == "invalid_api_key")
        r = try server.curl("/v1/completions", body: ok, headers: ["Content-Type": "application/json", "Authorization": "Bearer nope"])
        #expect(r.status == 401)
        #expect(try server.curl("/health", method: "GET", body: nil, headers: [:]).status == 200)
        // Unknown fields are ignored.
        r = try server.curl("/v1/completions", body: #"{"prompt": "Hi", "max_tokens": 3, "frobnicate": true, "logit_bias": {"5": 1}, "user": "u"}"#,
                            headers: auth)
        #expect(r.status == 200, "\(r.body)")
        #expect((r.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 3)
        // 400s: malformed JSON and invalid values, each naming what is wrong.
        let longPrompt = String(repeating: "Once upon a time there was a dog. ", count: 20)
        let cases: [(String, String, String?)] = [
            ("/v1/completions", "{not json", nil),
            ("/v1/completions", "[1, 2]", nil),
            ("/v1/completions", #"{"prompt": "Hi", "temperature": 5}"#, "temperature"),
            ("/v1/completions", #"{"prompt": "Hi", "top_p": 0}"#, "top_p"),
            ("/v1/completions", #"{"prompt": "Hi", "max_tokens": 0}"#, "max_tokens"),
            ("/v1/completions", #"{"prompt": "Hi", "max_tokens": 101}"#, "max_tokens"),
            ("/v1/completions", #"{"prompt": "Hi", "max_tokens": "many"}"#, "max_tokens"),
            ("/v1/completions", #"{"prompt": "Hi", "n": 2}"#, "n"),
            ("/v1/completions", #"{"prompt": "Hi", "stop": ["a", "b", "c", "d", "e"]}"#, "stop"),
            ("/v1/completions", #"{"prompt": "Hi", "seed": -1}"#, "seed"),
            ("/v1/completions", #"{"prompt": "Hi", "balcony": {"exit": 2}}"#, "balcony"),
            ("/v1/completions", #"{"prompt": "Hi", "balcony": {"budget": 0.01}}"#, "balcony"),
            ("/v1/completions", #"{"prompt": "Hi", "balcony": {"exit": 1, "budget": 0.5}}"#, "balcony"),
            ("/v1/completions", #"{"prompt": "Hi", "balcony": {"latency_ms": -3}}"#, "balcony"),
            ("/v1/completions", #"{"prompt": ["a", "b"]}"#, "prompt"),
            ("/v1/completions", #"{"prompt": [1, 99999]}"#, "prompt"),
            ("/v1/completions", "{\"prompt\": \"\(longPrompt)\"}", "prompt"),
            ("/v1/chat/completions", #"{"model": "x"}"#, "messages"),
            ("/v1/chat/completions", #"{"messages": [{"role": "wizard", "content": "hi"}]}"#, "messages"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": 5}]}"#, "messages"),
        ]
        for (path, body, param) in cases {
            let r = try server.curl(path, body: body, headers: auth)
            #expect(r.status == 400, "\(body) -> \(r.status) \(r.body)")
            #expect(r.errorMessage?.isEmpty == false, "\(body): \(r.body)")
            #expect((r.json?["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
            if let param { #expect(r.errorParam?.hasPrefix(param) == true, "\(body): \(r.body)") }
        }
        // 413 past the body limit.
        r = try server.curl("/v1/completions", body: "{\"prompt\": \"\(String(repeating: "a", count: 4000))\"}", headers: auth)
        #expect(r.status == 413 && (r.json?["error"] as? [String: Any])?["code"] as? String == "request_too_large", "\(r.body)")
        // 404 in the same shape.
        r = try server.curl("/v1/engines", method: "GET", body: nil, headers: auth)
        #expect(r.status == 404 && r.errorMessage != nil)
        // Models and metrics.
        r = try server.curl("/v1/models", method: "GET", body: nil, headers: auth)
        let data = r.json?["data"] as? [[String: Any]]
        #expect(data?.first?["id"] as? String == "stories260K")
        #expect((data?.first?["balcony"] as? [String: Any])?["exits"] as? [Int] == [1, 3])
        r = try server.curl("/metrics", method: "GET", body: nil, headers: [:])
        for line in ["balcony_requests_total{endpoint=\"/v1/completions\",status=\"401\"} 2",
                     "balcony_requests_total{endpoint=\"/v1/completions\",status=\"413\"} 1",
                     "balcony_tokens_by_exit_total{exit=\"full\"} 3", "# TYPE balcony_token_latency_seconds histogram",
                     "balcony_queue_depth 0"] {
            #expect(r.body.contains(line), "\(line)")
        }
    }

    @Test func streamingUsesServerSentEvents() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let body = #"{"prompt": "The little dog", "max_tokens": 10, "temperature": 0, "balcony": {"exit": 1}}"#
        let plain = try server.curl("/v1/completions", body: body)
        let streamed = try server.curl("/v1/completions", body: body.replacingOccurrences(of: "}}", with: "}, \"stream\": true}"))
        #expect(streamed.status == 200)
        let events = streamed.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.allSatisfy { $0.hasPrefix("data: ") }, "\(streamed.body)")
        #expect(events.last == "data: [DONE]")
        let chunks = events.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any] }
        #expect(chunks.count == events.count - 1)
        #expect(chunks.allSatisfy { $0["object"] as? String == "text_completion" })
        #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1)
        let text = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }.joined()
        let expected = ((plain.json?["choices"] as? [[String: Any]])?.first?["text"] as? String)
        #expect(text == expected)
        let last = chunks.last ?? [:]
        #expect((last["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "length")
        #expect(((last["balcony"] as? [String: Any])?["exits"] as? [[String: Any]])?.first?["tokens"] as? Int == 10)
    }

    /// 32 streaming clients at once, at mixed exits: every stream completes with exactly the text it
    /// gets alone (greedy decoding is batch-invariant), none lost or duplicated.
    @Test func thirtyTwoConcurrentStreamsAreCompleteAndBatchInvariant() throws {
        let server = try ServerProcess(["--max-batch", "16"])
        defer { server.stop() }
        let out = try Self.python([server.baseURL + "/v1", "none", "concurrent", "32", "16"])
        let alone = out["alone"] as? [[String: Any]] ?? [], together = out["together"] as? [[String: Any]] ?? []
        #expect(alone.count == 32 && together.count == 32)
        var ids = Set<String>()
        for (a, t) in zip(alone, together) {
            #expect(t["i"] as? Int == a["i"] as? Int)
            #expect((t["text"] as? String)?.isEmpty == false)
            #expect(t["text"] as? String == a["text"] as? String, "client \(a["i"] ?? -1)")
            #expect(t["finish_reason"] as? String != nil && t["finish_reason"] as? String == a["finish_reason"] as? String)
            let tid = t["ids"] as? [String] ?? []
            #expect(tid.count == 1)
            ids.formUnion(tid)
        }
        #expect(ids.count == 32)
        // They were decoded together: more than one sequence per step on average.
        let metrics = try server.curl("/metrics", method: "GET", body: nil, headers: [:]).body
        func value(_ name: String) -> Double {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) } ?? 0
        }
        #expect(value("balcony_decode_rows_total") > 1.5 * value("balcony_decode_steps_total"))
    }

    /// --max-concurrent answers 429 beyond the limit; a client that disconnects frees its slot at
    /// once; SIGTERM lets a running stream finish, then the server exits cleanly.
    @Test func limitsDisconnectsAndDrain() throws {
        let server = try ServerProcess(["--max-concurrent", "2", "--test-step-delay-ms", "20"])
        defer { server.stop() }
        func health() throws -> Int {
            (try server.curl("/health", method: "GET", body: nil, headers: [:]).json?["requests_in_flight"] as? Int) ?? -1
        }
        func waitFor(_ inFlight: Int) throws -> Bool {
            for _ in 0..<300 {
                if try health() == inFlight { return true }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return false
        }
        func startStream(_ tokens: Int) throws -> (Process, Pipe) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["curl", "-s", "-N", server.baseURL + "/v1/completions", "-H", "Content-Type: application/json",
                           "-d", "{\"prompt\": \"Once\", \"max_tokens\": \(tokens), \"temperature\": 0, \"stream\": true}"]
            let out = Pipe()
            p.standardOutput = out
            p.standardInput = FileHandle.nullDevice
            try p.run()
            return (p, out)
        }
        let (a, _) = try startStream(400)
        let (b, bOut) = try startStream(60)
        #expect(try waitFor(2))
        let r = try server.curl("/v1/completions", body: #"{"prompt": "Hi", "max_tokens": 2}"#)
        #expect(r.status == 429 && (r.json?["error"] as? [String: Any])?["code"] as? String == "rate_limit_exceeded", "\(r.body)")
        a.terminate()  // disconnect
        #expect(try waitFor(1), "a disconnected client's slot was not freed")
        // SIGTERM while b streams: b still gets every token and [DONE]; the server exits 0.
        server.process.terminate()
        let text = String(decoding: bOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        b.waitUntilExit()
        #expect(text.hasSuffix("data: [DONE]\n\n"), "\(text.suffix(300))")
        #expect(text.contains("\"finish_reason\":\"length\""))
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0, "\(server.stderr)")
    }
}
