import Foundation
import Testing
@testable import BalconyCore

/// The serving engine without HTTP: continuous batching, batch invariance, exits, limits, and the
/// pure pieces (stop sequences, chat templates, the slo policy, metrics).
@Suite struct ServingTests {
    static let storiesDir = ModelFixtures.shared.appendingPathComponent("models/stories260K")

    /// stories260K with its tokenizer and balconies at exits 1 and 3 (scaled random weights, so
    /// every exit's output differs).
    static let stories: (model: BalconyModel, tokenizer: any Tokenizer) = {
        let loaded = try! ModelLoader.load(path: storiesDir.appendingPathComponent("stories260K.bin").path)
        let base = try! LlamaModel(weights: loaded.weights)
        let tok = try! TokenizerLoader.load(url: loaded.tokenizerHint!)
        let balconies = [1, 3].map { k -> BalconyParameters in
            var b = try! BalconyParameters.copyInitialized(from: loaded.weights, exit: k)
            b.forEachTensor { name, t in if name.hasSuffix("down_proj.weight") { t = t.map { $0 * 0.5 } } }
            return b
        }
        return (try! BalconyModel(base: base, balconies: balconies), tok)
    }()

    static func engine(maxBatch: Int = 16, maxConcurrent: Int = 64, policy: ServingPolicy = .fixed, target: Double? = nil,
                       latency: StepLatencyModel? = nil) -> ServingEngine {
        let e = ServingEngine(model: stories.model, tokenizer: stories.tokenizer,
                              configuration: .init(maxBatch: maxBatch, maxConcurrent: maxConcurrent, policy: policy, targetTokenMs: target),
                              metrics: ServingMetrics(), latency: latency)
        e.start()
        return e
    }

    /// What a request alone gives: the generation loop of `balcony generate`.
    static func alone(_ prompt: String, maxTokens: Int, exit: ExitChoice, sampling: SamplingParameters = .greedy) throws -> [Int] {
        let g = Generator(model: stories.model.base, tokenizer: stories.tokenizer, balconies: stories.model, exit: exit)
        return try g.generate(prompt: g.promptTokens(prompt), parameters: GenerationParameters(maxTokens: maxTokens, sampling: sampling)) { _ in true }.0
    }

    static func run(_ handle: ServingHandle) async -> (text: String, completion: ServingCompletion?, exits: [ExitChoice]) {
        var text = "", exits: [ExitChoice] = [], done: ServingCompletion?
        for await e in handle.events {
            switch e {
            case let .text(t, exit): text += t; exits.append(exit)
            case let .finished(c): done = c
            case let .failed(m): Issue.record("failed: \(m)")
            }
        }
        return (text, done, exits)
    }

    static let prompts = ["Once upon a time", "The little dog", "Tom and Lily", "One day, a big", "She was sad because",
                          "The sun was", "Max liked to", "In the park,", "A bird sang", "Mom said,", "They went to the", "The cat"]

    @Test func concurrentGreedyRequestsMatchSingleRuns() async throws {
        let engine = Self.engine(maxBatch: 8)
        let exits: [ExitChoice] = [.full, .exit(1), .exit(3)]
        let cases = Self.prompts.enumerated().map { (i, p) in (p, exits[i % 3], 6 + (i % 4) * 5) }
        let results = try await withThrowingTaskGroup(of: (Int, [Int], String).self) { group in
            for (i, (p, e, n)) in cases.enumerated() {
                let tok = Self.stories.tokenizer
                let h = try engine.submit(ServingRequest(prompt: tok.encodeForModel(p), maxTokens: n, exit: .fixed(e)))
                group.addTask {
                    let r = await Self.run(h)
                    return (i, r.completion?.tokens ?? [], r.text)
                }
            }
            var out: [Int: ([Int], String)] = [:]
            for try await (i, ids, text) in group { out[i] = (ids, text) }
            return out
        }
        for (i, (p, e, n)) in cases.enumerated() {
            let ids = try Self.alone(p, maxTokens: n, exit: e)
            #expect(results[i]!.0 == ids, "prompt \(p) at exit \(e)")
            #expect(results[i]!.1 == Self.stories.tokenizer.decode(ids, previous: Self.stories.tokenizer.encodeForModel(p).last))
        }
        await engine.drain()
        #expect(engine.requestsInFlight == 0)
    }

    /// A batched decode step gives every row bit-identical logits to decoding it alone, at mixed
    /// exits, including rows whose exit just changed (they catch up alone).
    @Test func batchedDecodeIsBitIdenticalToAlone() throws {
        let m = Self.stories.model, tok = Self.stories.tokenizer
        let exits: [ExitChoice] = [.full, .exit(1), .exit(3)]
        let prompts = Self.prompts.prefix(16).map { tok.encodeForModel($0) }
        let batched = prompts.map { _ in m.makeCache() }, alone = prompts.map { _ in m.makeCache() }
        for (i, p) in prompts.enumerated() {
            _ = try m.forward(p, cache: batched[i], exit: exits[i % 3])
            _ = try m.forward(p, cache: alone[i], exit: exits[i % 3])
        }
        let scratch = Scratch()
        for step in 0..<4 {
            // Step 2 moves every row to another exit (a switch), the others keep theirs.
            let stepExits = prompts.indices.map { exits[($0 + (step >= 2 ? 1 : 0)) % 3] }
            let tokens = prompts.indices.map { ($0 * 7 + step * 3 + 5) % m.config.vocabSize }
            let rows = prompts.indices.map { DecodeRow(cache: batched[$0], token: tokens[$0], exit: stepExits[$0]) }
            let got = try m.decode(rows, scratch: scratch)
            for i in prompts.indices {
                let want = try m.forward([tokens[i]], cache: alone[i], exit: stepExits[i])
                let same = got[i] == want  // bit for bit (kept out of #expect, which would print both vectors)
                #expect(same, "row \(i) step \(step) at \(stepExits[i]): max difference \(zip(got[i], want).map { abs($0 - $1) }.max() ?? 0)")
            }
        }
    }

    @Test func seededSamplingMatchesSingleRun() async throws {
        let engine = Self.engine()
        let sampling = SamplingParameters(temperature: 0.8, topP: 0.9, seed: 42)
        let tok = Self.stories.tokenizer
        let h1 = try engine.submit(ServingRequest(prompt: tok.encodeForModel("Lily"), maxTokens: 20, sampling: sampling, exit: .fixed(.exit(3))))
        let h2 = try engine.submit(ServingRequest(prompt: tok.encodeForModel("Tom"), maxTokens: 20, sampling: sampling))
        let (r1, r2) = await (Self.run(h1), Self.run(h2))
        #expect(r1.completion?.tokens == (try Self.alone("Lily", maxTokens: 20, exit: .exit(3), sampling: sampling)))
        #expect(r2.completion?.tokens == (try Self.alone("Tom", maxTokens: 20, exit: .full, sampling: sampling)))
        #expect(r1.completion?.exits == [ExitUsage(exit: "3", tokens: 20)])
        await engine.drain()
    }

    @Test func stopSequencesCutTheOutput() async throws {
        let engine = Self.engine()
        let tok = Self.stories.tokenizer
        let full = try Self.alone("Once upon a time", maxTokens: 40, exit: .full)
        let text = tok.decode(full, previous: tok.encodeForModel("Once upon a time").last)
        let stop = "Lily"
        let h = try engine.submit(ServingRequest(prompt: tok.encodeForModel("Once upon a time"), maxTokens: 40, stop: [stop]))
        let r = await Self.run(h)
        let expected = text.range(of: stop).map { String(text[..<$0.lowerBound]) } ?? text
        #expect(r.text == expected)
        #expect(r.completion?.finishReason == (text.contains(stop) ? .stop : .length))
        await engine.drain()
    }

    @Test func limitsAndCancellation() async throws {
        let engine = Self.engine(maxBatch: 1, maxConcurrent: 2)
        let tok = Self.stories.tokenizer
        let long = ServingRequest(prompt: tok.encodeForModel("Once"), maxTokens: 400)
        let a = try engine.submit(long)
        let b = try engine.submit(long)
        #expect(throws: ServingError.tooManyRequests(limit: 2)) { try engine.submit(long) }
        a.cancel()
        b.cancel()
        // Both slots free within a step or two.
        for _ in 0..<200 where engine.requestsInFlight > 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        #expect(engine.requestsInFlight == 0)
        #expect(throws: ServingError.self) { try engine.submit(ServingRequest(prompt: [], maxTokens: 4)) }
        #expect(throws: ServingError.self) { try engine.submit(ServingRequest(prompt: [1], maxTokens: 4, exit: .fixed(.exit(2)))) }
        await engine.drain()
        #expect(throws: ServingError.shuttingDown) { try engine.submit(ServingRequest(prompt: [1], maxTokens: 4)) }
    }

    @Test func sloPolicyGoesShallowUnderLoadAndBack() {
        // 1 ms to read the full model, 0.5 ms per row; exits proportionally cheaper.
        let latency = StepLatencyModel(fixedMs: [.exit(1): 0.4, .exit(3): 0.8, .full: 1.0],
                                       perRowMs: [.exit(1): 0.1, .exit(3): 0.2, .full: 0.25])
        let p = ExitPolicy(exits: [.exit(1), .exit(3), .full], latency: latency)
        #expect(p.choose(targetMs: 2, rows: 1, current: nil) == .full)       // 1.25 ms
        #expect(p.choose(targetMs: 2, rows: 5, current: .full) == .exit(3))  // full 2.25, exit 3 1.8
        #expect(p.choose(targetMs: 2, rows: 14, current: .exit(3)) == .exit(1))
        #expect(p.choose(targetMs: 0.1, rows: 1, current: nil) == .exit(1))  // nothing fits: the shallowest
        // Back deeper only with the margin: exit 3 at 5 rows is 1.8 > 0.85 x 2.
        #expect(p.choose(targetMs: 2, rows: 5, current: .exit(1)) == .exit(1))
        #expect(p.choose(targetMs: 2, rows: 2, current: .exit(1)) == .full)   // 1.5 <= 1.7
    }

    @Test func latencyModelFitsAndCorrects() {
        var m = StepLatencyModel(single: [.full: 2], batched: [.full: 9], rows: 8)
        #expect(abs(m.perRowMs[.full]! - 1) < 1e-9 && abs(m.fixedMs[.full]! - 1) < 1e-9)
        for _ in 0..<100 { m.observe(stepMs: 6, exits: [.full, .full], depth: { _ in 5 }) }  // predicted 3
        #expect(abs(m.correction - 2) < 0.01)
        #expect(abs(m.predict(.full, rows: 2) - 6) < 0.05)
    }

    @Test func stopMatcherHoldsBackPrefixes() {
        var m = StopSequenceMatcher(stops: ["END", "\n\n"])
        #expect(m.append("Hello E") == ("Hello ", false))
        #expect(m.append("N") == ("", false))
        #expect(m.append("ough") == ("ENough", false))
        #expect(m.append(" then\n") == (" then", false))
        #expect(m.append("\nmore") == ("", true))
        var n = StopSequenceMatcher(stops: ["xyz"])
        #expect(n.append("abx") == ("ab", false))
        #expect(n.finish() == "x")
        var none = StopSequenceMatcher(stops: [])
        #expect(none.append("anything") == ("anything", false))
    }

    @Test func chatTemplatesAreRecognizedAndRendered() throws {
        #expect(ChatTemplate.recognize(nil) == .plain)
        #expect(ChatTemplate.recognize("{{ '<|start_header_id|>' + message['role'] }}") == .llama3)
        #expect(ChatTemplate.recognize("{% for m in messages %}<|im_start|>{{ m.role }}") == .chatml)
        #expect(ChatTemplate.recognize("{{ bos_token + '[INST] ' + content + ' [/INST]' }}") == .llama2)
        let msgs = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi"),
                    ChatMessage(role: "assistant", content: "Hello."), ChatMessage(role: "user", content: "Story?")]
        #expect(try ChatTemplate.plain.render(msgs) == "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Story?\nAssistant:")
        #expect(try ChatTemplate.chatml.render(Array(msgs.prefix(2)))
                == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(try ChatTemplate.llama3.render([msgs[1]])
                == "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(try ChatTemplate.llama2.render(msgs)
                == "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Story? [/INST]")
    }

    @Test func metricsRenderPrometheusText() {
        let m = ServingMetrics(info: ["policy": "slo"])
        m.request(endpoint: "/v1/completions", status: 200)
        m.token(exit: .exit(3), secondsSincePrevious: 0.003, first: false)
        m.token(exit: .full, secondsSincePrevious: 0.2, first: true)
        m.requestFinished(seconds: 0.5, promptTokens: 4)
        let s = m.render()
        #expect(s.contains("balcony_server_info{policy=\"slo\"} 1"))
        #expect(s.contains("balcony_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1"))
        #expect(s.contains("balcony_tokens_by_exit_total{exit=\"3\"} 1"))
        #expect(s.contains("balcony_token_latency_seconds_bucket{le=\"0.005\"} 1"))
        #expect(s.contains("balcony_token_latency_seconds_count 1"))
        #expect(s.contains("balcony_prompt_tokens_total 4"))
        #expect(s.contains("# TYPE balcony_queue_depth gauge"))
    }
}
