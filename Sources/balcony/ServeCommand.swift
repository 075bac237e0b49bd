import ArgumentParser
import BalconyCore
import BalconyServer
import Foundation

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "An OpenAI-compatible HTTP server with continuous batching and per-request exits.",
        discussion: """
        Endpoints: POST /v1/completions, POST /v1/chat/completions (stream: true for server-sent events), GET /v1/models,
        GET /health, GET /metrics (Prometheus). A request picks its exit with the extension field
        "balcony": {"exit": K | "full"}, {"budget": F} or {"latency_ms": X}; under --policy slo, requests without one get
        the deepest exit whose measured per-token latency at the current load meets --target-token-ms.
        Prints the address it listens on; SIGINT/SIGTERM drain running requests and stop. See docs/serving.md.
        """)

    @OptionGroup var options: ModelOptions
    @Option(help: "Balcony file (balconies.safetensors from 'balcony train').") var balconies: String?
    @Option(help: "Random balconies at these exits (comma-separated), for load tests without training.") var randomExits: String?
    @Option(help: "Address to bind (default: loopback only).") var host = "127.0.0.1"
    @Option(help: "Port (0 = any free port; the address is printed).") var port = 8080
    @Option(help: "Require Authorization: Bearer KEY on /v1 routes.") var apiKey: String?
    @Option(help: "Exit policy for requests without an explicit exit: fixed (full model) or slo.") var policy: String = "fixed"
    @Option(help: "Per-token latency target of the slo policy, ms.") var targetTokenMs: Double?
    @Option(help: "Requests running or queued at most (HTTP 429 beyond).") var maxConcurrent = 64
    @Option(help: "Sequences decoded together at most.") var maxBatch = 16
    @Option(help: "Largest request body in bytes (HTTP 413 beyond).") var maxBodyBytes = 1 << 20
    @Option(help: "Longest prompt in tokens (default: the model's context - 1).") var maxPromptTokens: Int?
    @Option(help: "Largest max_tokens a request may ask for (default: the model's context).") var maxTokensLimit: Int?
    @Option(help: "Model id shown by /v1/models (default: the model's file or folder name).") var modelName: String?
    @Option(help: "Jinja chat template file (or a tokenizer_config.json) to use instead of the model's.") var chatTemplate: String?
    @Option(help: .hidden) var testStepDelayMs: Double = 0

    func validate() throws {
        guard let p = ServingPolicy(rawValue: policy) else { throw ValidationError("--policy must be fixed or slo, not '\(policy)'") }
        if p == .slo && targetTokenMs == nil { throw ValidationError("--policy slo needs --target-token-ms") }
        if let t = targetTokenMs, !(t > 0) { throw ValidationError("--target-token-ms must be positive") }
        if maxConcurrent < 1 || maxBatch < 1 { throw ValidationError("--max-concurrent and --max-batch must be at least 1") }
        if port < 0 || port > 65535 { throw ValidationError("--port must be in 0...65535") }
        if maxBodyBytes < 1024 { throw ValidationError("--max-body-bytes must be at least 1024") }
        if balconies != nil && randomExits != nil { throw ValidationError("give --balconies or --random-exits, not both") }
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load()
            let tokenizer = try rt.requiredTokenizer
            let model = try BalconyOptions.load(rt, balconies: balconies, randomExits: randomExits)
                ?? BalconyModel(base: rt.model, balconies: [])
            let policy = ServingPolicy(rawValue: policy)!
            let context = model.config.contextLength
            let latency = try ServingEngine.calibrate(model: model, rows: min(maxBatch, 8))
            var engineConfig = ServingEngine.Configuration(maxBatch: maxBatch, maxConcurrent: maxConcurrent, policy: policy, targetTokenMs: targetTokenMs)
            engineConfig.stepDelay = testStepDelayMs / 1000
            let engine = ServingEngine(model: model, tokenizer: tokenizer, configuration: engineConfig,
                                       metrics: ServingMetrics(info: ["policy": policy.rawValue, "target_token_ms": targetTokenMs.map { "\($0)" } ?? ""]),
                                       latency: latency)
            let template = ChatTemplateSource.load(try chatTemplateSource(rt), tokenizer: tokenizer, gguf: rt.loaded.gguf,
                                                  folders: templateFolders(rt))
            let name = modelName ?? URL(fileURLWithPath: rt.path).deletingPathExtension().lastPathComponent
            let limits = RequestLimits(maxBodyBytes: maxBodyBytes, maxPromptTokens: min(maxPromptTokens ?? context - 1, context - 1),
                                       maxTokens: min(maxTokensLimit ?? context, context))
            let server = BalconyHTTPServer(engine: engine, configuration: ServerConfiguration(host: host, port: port, apiKey: apiKey, modelName: name, limits: limits),
                                           chatTemplate: template)
            let exits = model.exits.isEmpty ? "none" : model.exits.map(String.init).joined(separator: ",")
            printError("model \(name): \(model.config.layerCount) layers, exits \(exits), chat template \(template.name), policy \(policy.rawValue)"
                       + (targetTokenMs.map { " (target \($0) ms/token)" } ?? ""))
            for e in [ExitChoice.full] + model.exits.map({ .exit($0) }) {
                printError(String(format: "  exit %@: %.2f ms/token alone, +%.2f ms per extra sequence in a batch", e.description,
                                  latency.predict(e, rows: 1), latency.perRowMs[e] ?? 0))
            }
            try await server.run { address in
                writeOut("listening on \(address)\n")  // unbuffered: tests and scripts wait for this line
            }
            printError("stopped")
        }
    }

    /// The Jinja chat template: --chat-template, else what the model ships (GGUF metadata, or
    /// tokenizer_config.json beside the tokenizer or the model).
    func chatTemplateSource(_ rt: LoadedRuntime) throws -> String? {
        try ChatTemplateSource.text(override: chatTemplate, gguf: rt.loaded.gguf, folders: templateFolders(rt))
    }

    /// Where tokenizer_config.json may be: beside --tokenizer, then beside the model's tokenizer.
    func templateFolders(_ rt: LoadedRuntime) -> [URL] {
        var dirs: [URL] = []
        if let t = options.tokenizer { dirs.append(ChatTemplateSource.folder(of: URL(fileURLWithPath: t))) }
        if let hint = rt.loaded.tokenizerHint { dirs.append(ChatTemplateSource.folder(of: hint)) }
        return dirs
    }
}
