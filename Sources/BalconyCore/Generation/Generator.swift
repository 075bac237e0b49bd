import Foundation

/// What to generate: how many tokens, how to sample, when to stop.
public struct GenerationParameters: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Stop at the tokenizer's end-of-sequence ids.
    public var stopAtEOS: Bool

    public init(maxTokens: Int = 256, sampling: SamplingParameters = .init(), stopAtEOS: Bool = true) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopAtEOS = stopAtEOS
    }
}

/// Timing and counts of one generation.
public struct GenerationStats: Sendable, Codable {
    public var promptTokens = 0
    public var generatedTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    /// Decode rate over the tokens after the first (the first comes out of prefill).
    public var decodeTokensPerSecond: Double {
        decodeSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / decodeSeconds : 0
    }
}

/// One piece of streamed output.
public struct GeneratedToken: Sendable {
    public let id: Int
    /// Text completed by this token (may be empty while a UTF-8 character is incomplete).
    public let text: String
}

/// The generation loop: prefill the prompt, then sample and decode one token at a time.
public struct Generator {
    public let model: LlamaModel
    public let tokenizer: any Tokenizer
    /// Balconies to exit through, and the exit every token uses (`.full` = the base model).
    public let balconies: BalconyModel?
    /// The exit of each generated token (one exit throughout, or a schedule that switches).
    public let schedule: ExitSchedule

    public init(model: LlamaModel, tokenizer: any Tokenizer, balconies: BalconyModel? = nil, exit: ExitChoice = .full) {
        self.init(model: model, tokenizer: tokenizer, balconies: balconies, schedule: ExitSchedule(exit))
    }

    public init(model: LlamaModel, tokenizer: any Tokenizer, balconies: BalconyModel?, schedule: ExitSchedule) {
        self.model = model
        self.tokenizer = tokenizer
        self.balconies = balconies
        self.schedule = schedule
    }

    /// One sequence's forward function (tokens, exit) over its own cache.
    struct Session {
        let step: ([Int], ExitChoice) throws -> [Float]
        let filled: () -> Int
        let capacity: Int
    }

    func makeSession(capacity: Int) throws -> Session {
        if let b = balconies {
            for e in schedule.exits { try b.validate(e) }
            let cache = b.makeCache(capacity: capacity)
            return Session(step: { try b.forward($0, cache: cache, exit: $1) }, filled: { cache.count }, capacity: cache.base.capacity)
        }
        if let e = schedule.exits.first(where: { $0 != .full }) { throw BalconyError.noBalconies(e) }
        let cache = model.makeCache(capacity: capacity)
        let m = model
        return Session(step: { t, _ in try m.forward(t, cache: cache) }, filled: { cache.count }, capacity: cache.capacity)
    }

    /// Prompt ids for `text`: BOS when the tokenizer adds it; BOS alone for an empty prompt.
    /// Control-token texts in the prompt ("<|im_start|>", "<s>") become their ids, as llama.cpp
    /// tokenizes prompts: a chat prompt written out by hand means what its template would render.
    public func promptTokens(_ text: String) -> [Int] {
        var ids = tokenizer.encode(text, parseSpecial: true)
        if tokenizer.addsBOS, let bos = tokenizer.bosTokenId, ids.first != bos { ids = [bos] + ids }
        if ids.isEmpty, let bos = tokenizer.bosTokenId { ids = [bos] }
        return ids
    }

    /// Generates after `prompt`, calling `onToken` for each new token; returning false stops early.
    /// Stops at EOS, at `maxTokens`, or when the context is full.
    @discardableResult
    public func generate(prompt: [Int], parameters: GenerationParameters,
                         onToken: (GeneratedToken) throws -> Bool) throws -> ([Int], GenerationStats) {
        try parameters.sampling.validate()
        guard parameters.maxTokens >= 0 else { throw GenerationError.invalidParameter("max tokens must be >= 0") }
        try schedule.validate(maxTokens: parameters.maxTokens)
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        let context = model.config.contextLength
        guard prompt.count < context else { throw GenerationError.promptTooLong(tokens: prompt.count, context: context) }
        var stats = GenerationStats()
        stats.promptTokens = prompt.count
        var out: [Int] = []
        guard parameters.maxTokens > 0 else { return (out, stats) }

        let session = try makeSession(capacity: min(context, prompt.count + parameters.maxTokens))
        var sampler = Sampler(parameters.sampling)
        var decoder = StreamingDecoder(tokenizer: tokenizer, previous: prompt.last)
        var t0 = Date()
        var logits = try session.step(prompt, schedule.exit(forToken: 0))
        stats.prefillSeconds = Date().timeIntervalSince(t0)
        t0 = Date()
        while true {
            if let why = Sampler.problem(with: logits) { throw GenerationError.badLogits(position: session.filled(), why) }
            let next = sampler.sample(logits)
            if parameters.stopAtEOS && tokenizer.eosTokenIds.contains(next) { break }
            out.append(next)
            stats.generatedTokens = out.count
            let text = decoder.append(next)
            if try !onToken(GeneratedToken(id: next, text: text)) { break }
            if out.count >= parameters.maxTokens || session.filled() >= session.capacity { break }
            logits = try session.step([next], schedule.exit(forToken: out.count))
        }
        let rest = decoder.finish()
        if !rest.isEmpty { _ = try onToken(GeneratedToken(id: -1, text: rest)) }
        stats.decodeSeconds = Date().timeIntervalSince(t0)
        return (out, stats)
    }

    /// The same loop as an `AsyncThrowingStream` of text pieces (for servers and UIs).
    public func stream(prompt: [Int], parameters: GenerationParameters) -> AsyncThrowingStream<String, Error> {
        let box = UncheckedSendable(self)
        return AsyncThrowingStream { continuation in
            let task = Task.detached {
                do {
                    try box.value.generate(prompt: prompt, parameters: parameters) { piece in
                        if !piece.text.isEmpty { continuation.yield(piece.text) }
                        return !Task.isCancelled
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
