import BalconyCore
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// What `balcony serve` was told.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var apiKey: String?
    /// The id `/v1/models` lists and responses echo.
    public var modelName: String
    public var limits: RequestLimits

    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, modelName: String, limits: RequestLimits) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.modelName = modelName
        self.limits = limits
    }
}

/// The OpenAI-compatible HTTP API over a `ServingEngine`: thin handlers that parse and validate,
/// submit to the engine, and stream its events back (as JSON, or as server-sent events).
public struct BalconyHTTPServer: Sendable {
    public let engine: ServingEngine
    public let configuration: ServerConfiguration
    public let chatTemplate: ChatTemplate
    let created = Int(Date().timeIntervalSince1970)

    public init(engine: ServingEngine, configuration: ServerConfiguration, chatTemplate: ChatTemplate) {
        self.engine = engine
        self.configuration = configuration
        self.chatTemplate = chatTemplate
    }

    var tokenizer: any Tokenizer { engine.tokenizer }
    var model: BalconyModel { engine.model }
    var metrics: ServingMetrics { engine.metrics }

    /// Serves until SIGINT/SIGTERM, then drains: the listener closes, running requests finish, the
    /// engine stops. `onListening` gets the address actually bound (port 0 picks a free one).
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        engine.start()
        var logger = Logger(label: "balcony-serve")
        logger.logLevel = .warning
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "balcony"),
            onServerRunning: { channel in
                let address = channel.localAddress.map { a in
                    let host = a.ipAddress.map { a.protocol == .inet6 ? "[\($0)]" : $0 } ?? configuration.host
                    return "http://\(host):\(a.port ?? configuration.port)"
                } ?? "http://\(configuration.host):\(configuration.port)"
                onListening(address)
            },
            logger: logger)
        // Trap the signals before the listener exists, so that SIGINT/SIGTERM can never kill a server
        // that has already said it listens (ServiceGroup would install its own handlers a little later).
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in signals {
                    await group.triggerGracefulShutdown()
                    break
                }
            }
            // Graceful shutdown closes the listener and lets open requests finish; then run returns.
            try await group.run()
            tasks.cancelAll()
        }
        await engine.drain()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(ErrorMiddleware(metrics: metrics))
        router.get("/health") { _, _ -> Response in
            jsonResponse(HealthBody(status: "ok", requests_in_flight: engine.requestsInFlight))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        let v1 = router.group("v1").add(middleware: AuthMiddleware(apiKey: configuration.apiKey))
        v1.get("models") { _, _ -> Response in jsonResponse(modelList()) }
        v1.post("completions") { request, _ -> Response in try await completions(request) }
        v1.post("chat/completions") { request, _ -> Response in try await chat(request) }
        return router
    }

    func modelList() -> ModelList {
        let info = ModelList.Entry.Info(layers: model.config.layerCount, exits: model.exits, context_length: model.config.contextLength,
                                        policy: engine.configuration.policy.rawValue, target_token_ms: engine.configuration.targetTokenMs)
        return ModelList(data: [.init(id: configuration.modelName, created: created, balcony: info)])
    }

    // MARK: - Completions

    func completions(_ request: Request) async throws -> Response {
        var request = request
        let data = try await body(&request)
        let fields = try decodeBody(GenerationFields.self, from: data)
        let body = try decodeBody(CompletionBody.self, from: data)
        let prompt: [Int]
        switch body.prompt {
        case nil, .text(""): prompt = tokenizer.bosTokenId.map { [$0] } ?? []
        case let .text(s): prompt = tokenizer.encodeForModel(s)
        case let .tokens(ids): prompt = ids
        }
        let r = try prepare(fields, prompt: prompt, maxTokens: fields.maxTokens, defaultMaxTokens: 16)
        let id = "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        let style = ResponseStyle.completion(id: id, created: Int(Date().timeIntervalSince1970), model: configuration.modelName)
        return try await respond(request, r, stream: fields.stream ?? false, includeUsage: fields.streamOptions?.includeUsage ?? false, style: style)
    }

    func chat(_ request: Request) async throws -> Response {
        var request = request
        let data = try await body(&request)
        let fields = try decodeBody(GenerationFields.self, from: data)
        let body = try decodeBody(ChatBody.self, from: data)
        guard let messages = body.messages, !messages.isEmpty else {
            throw APIError.invalid("'messages' must be a non-empty list of {role, content}", param: "messages")
        }
        let roles: Set<String> = ["system", "developer", "user", "assistant"]
        for m in messages where !roles.contains(m.role) {
            throw APIError.invalid("unsupported message role '\(m.role)'; use system, user or assistant", param: "messages")
        }
        let chatMessages = messages.map { ChatMessage(role: $0.role == "developer" ? "system" : $0.role, content: $0.content?.text ?? "") }
        let prompt: [Int]
        do {
            prompt = try chatTemplate.encode(chatMessages, tokenizer: tokenizer)
        } catch let e as JinjaError {
            throw APIError.invalid(e.errorDescription ?? "\(e)", param: "messages")
        }
        let r = try prepare(fields, prompt: prompt, maxTokens: fields.maxCompletionTokens ?? fields.maxTokens, defaultMaxTokens: nil)
        let id = "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        let style = ResponseStyle.chat(id: id, created: Int(Date().timeIntervalSince1970), model: configuration.modelName)
        return try await respond(request, r, stream: fields.stream ?? false, includeUsage: fields.streamOptions?.includeUsage ?? false, style: style)
    }

    func body(_ request: inout Request) async throws -> Data {
        do {
            return Data(buffer: try await request.collectBody(upTo: configuration.limits.maxBodyBytes))
        } catch is NIOTooManyBytesError {
            throw APIError(status: 413, message: "the request body is larger than the server's limit of \(configuration.limits.maxBodyBytes) bytes",
                           code: "request_too_large")
        }
    }

    /// Validates the generation fields and turns them into an engine request.
    func prepare(_ f: GenerationFields, prompt: [Int], maxTokens requested: Int?, defaultMaxTokens: Int?) throws -> ServingRequest {
        let limits = configuration.limits
        let context = model.config.contextLength
        if let n = f.n, n != 1 { throw APIError.invalid("only n = 1 is supported", param: "n") }
        guard !prompt.isEmpty else { throw APIError.invalid("the prompt is empty", param: "prompt") }
        if prompt.count > limits.maxPromptTokens || prompt.count >= context {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; this server takes at most \(min(limits.maxPromptTokens, context - 1))",
                                   param: "prompt", code: "context_length_exceeded")
        }
        for t in prompt where t < 0 || t >= model.config.vocabSize {
            throw APIError.invalid("token id \(t) is outside the vocabulary (0..<\(model.config.vocabSize))", param: "prompt")
        }
        var maxTokens: Int
        if let m = requested {
            guard m >= 1 else { throw APIError.invalid("max_tokens must be at least 1, got \(m)", param: "max_tokens") }
            guard m <= limits.maxTokens else {
                throw APIError.invalid("max_tokens is \(m); this server allows at most \(limits.maxTokens)", param: "max_tokens")
            }
            guard prompt.count + m <= context else {
                throw APIError.invalid("the prompt (\(prompt.count) tokens) plus max_tokens (\(m)) exceeds the model's context of \(context) tokens",
                                       param: "max_tokens", code: "context_length_exceeded")
            }
            maxTokens = m
        } else {
            maxTokens = min(defaultMaxTokens ?? limits.maxTokens, limits.maxTokens, context - prompt.count)
        }
        maxTokens = max(1, maxTokens)
        let temperature = f.temperature ?? 1
        guard temperature >= 0, temperature <= 2 else { throw APIError.invalid("temperature must be between 0 and 2, got \(temperature)", param: "temperature") }
        let topP = f.topP ?? 1
        guard topP > 0, topP <= 1 else { throw APIError.invalid("top_p must be in (0, 1], got \(topP)", param: "top_p") }
        if let s = f.seed, s < 0 { throw APIError.invalid("seed must be a non-negative integer", param: "seed") }
        let seed = f.seed.map(UInt64.init) ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let stop = f.stop?.all ?? []
        guard stop.count <= limits.maxStopSequences else {
            throw APIError.invalid("at most \(limits.maxStopSequences) stop sequences are allowed", param: "stop")
        }
        return ServingRequest(prompt: prompt, maxTokens: maxTokens,
                              sampling: SamplingParameters(temperature: Float(temperature), topP: Float(topP), seed: seed),
                              stop: stop, exit: try exitRequest(f.balcony))
    }

    /// The exit a request asks for in its `balcony` field.
    func exitRequest(_ b: BalconyField?) throws -> ExitRequest {
        guard let b else { return .auto }
        let given = [b.exit != nil, b.budget != nil, b.latencyMs != nil].filter { $0 }.count
        guard given <= 1 else { throw APIError.invalid("give at most one of balcony.exit, balcony.budget and balcony.latency_ms", param: "balcony") }
        do {
            if let e = b.exit {
                let choice = try ExitChoice(parsing: e)
                if choice != .full && model.exits.isEmpty { throw BalconyError.noBalconies(choice) }
                try model.validate(choice)
                return .fixed(choice)
            }
            if let budget = b.budget {
                return .fixed(try ExitCostModel(model).exit(forBudget: budget))
            }
            if let ms = b.latencyMs {
                guard ms > 0, ms.isFinite else { throw BudgetError.invalidLatency(ms) }
                return .latency(ms: ms)
            }
        } catch let e as LocalizedError {
            throw APIError.invalid(e.errorDescription ?? "\(e)", param: "balcony")
        }
        return .auto
    }

    // MARK: - Answering

    func respond(_ request: Request, _ r: ServingRequest, stream: Bool, includeUsage: Bool, style: ResponseStyle) async throws -> Response {
        let handle: ServingHandle
        do {
            handle = try engine.submit(r)
        } catch let e as ServingError {
            switch e {
            case .tooManyRequests:
                throw APIError(status: 429, message: e.errorDescription!, type: "rate_limit_error", code: "rate_limit_exceeded")
            case .shuttingDown:
                throw APIError(status: 503, message: e.errorDescription!, type: "server_error", code: "shutting_down")
            case .invalidRequest:
                throw APIError.invalid(e.errorDescription!)
            }
        }
        let policy = engine.configuration.policy.rawValue
        if stream {
            let body = ResponseBody { writer in
                do {
                    for await chunk in sseChunks(handle, style: style, includeUsage: includeUsage, policy: policy) {
                        try await writer.write(ByteBuffer(bytes: chunk))
                    }
                    try await writer.finish(nil)
                } catch {
                    handle.cancel()  // the client went away: free its slot now
                    throw error
                }
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
        // A client that disconnects while waiting cancels its generation.
        let result = try await request.body.consumeWithInboundCloseHandler { _ in
            await collect(handle)
        } onInboundClosed: {
            handle.cancel()
        }
        switch result {
        case let .failure(message):
            throw APIError(status: 500, message: message, type: "server_error")
        case let .success(text, c):
            let report = BalconyReport(exit: c.exits.last?.exit, exits: c.exits, policy: policy)
            return jsonResponse(encoded: style.final(text: text, completion: c, report: report))
        }
    }

    enum Collected: Sendable {
        case success(String, ServingCompletion)
        case failure(String)
    }

    func collect(_ handle: ServingHandle) async -> Collected {
        var text = ""
        for await event in handle.events {
            switch event {
            case let .text(t, _): text += t
            case let .finished(c): return .success(text, c)
            case let .failed(m): return .failure(m)
            }
        }
        return .failure("the request was cancelled")
    }

    /// The server-sent events of a streamed request, each `data: {json}\n\n`, ending with `data: [DONE]`.
    func sseChunks(_ handle: ServingHandle, style: ResponseStyle, includeUsage: Bool, policy: String) -> AsyncStream<[UInt8]> {
        AsyncStream { continuation in
            let task = Task {
                func send(_ d: Data) { continuation.yield(Array("data: ".utf8) + Array(d) + Array("\n\n".utf8)) }
                if let first = style.opening() { send(first) }
                for await event in handle.events {
                    switch event {
                    case let .text(t, exit):
                        send(style.chunk(text: t, exit: exit.description))
                    case let .finished(c):
                        let report = BalconyReport(exit: c.exits.last?.exit, exits: c.exits, policy: policy)
                        send(style.closing(completion: c, report: includeUsage ? nil : report))
                        if includeUsage { send(style.usageChunk(completion: c, report: report)) }
                    case let .failed(m):
                        send(encodeJSON(APIError(status: 500, message: m, type: "server_error").body))
                    }
                }
                continuation.yield(Array("data: [DONE]\n\n".utf8))
                continuation.finish()
            }
            continuation.onTermination = { _ in
                task.cancel()
                handle.cancel()
            }
        }
    }
}

struct HealthBody: Encodable {
    var status: String
    var requests_in_flight: Int
}

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    jsonResponse(encoded: encodeJSON(value), status: status)
}

func jsonResponse(encoded: Data, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encoded)))
}
