import Foundation

/// Continuous batching over a `BalconyModel` on one dedicated thread.
///
/// Every iteration of the engine's loop first prefills waiting requests (each prompt in its own
/// forward pass, whole, as a single-request run would, up to `prefillTokensPerStep` prompt tokens per
/// iteration so that running streams keep flowing), then decodes one token for every running request
/// in batched steps of at most `BalconyModel.decodeBatchLimit` rows. Because a decode step puts one
/// row per sequence into matrix products whose rows do not affect each other, a sequence's tokens are
/// bit-identical to serving it alone (batch invariance). Exits are chosen per request and per step
/// (`ExitRequest`, `ServingPolicy`); switching is exact (`BalconyModel.forward`).
///
/// Compute never runs on the Swift cooperative pool or the HTTP event loops: `submit` hands a
/// request to the engine thread and returns an `AsyncStream` of its events.
public final class ServingEngine: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Sequences decoded together at most; more requests wait.
        public var maxBatch: Int
        /// Requests running or waiting at most; `submit` refuses more (HTTP 429).
        public var maxConcurrent: Int
        public var policy: ServingPolicy
        /// The per-token latency the `slo` policy holds, in ms.
        public var targetTokenMs: Double?
        /// Prompt tokens prefilled per iteration before the next decode step (at least one request).
        public var prefillTokensPerStep: Int
        /// Extra seconds slept after every decode step: a testing aid that makes requests take long
        /// enough to observe queueing, disconnects and draining deterministically.
        public var stepDelay: Double = 0

        public init(maxBatch: Int = 16, maxConcurrent: Int = 64, policy: ServingPolicy = .fixed, targetTokenMs: Double? = nil,
                    prefillTokensPerStep: Int = 256) {
            self.maxBatch = maxBatch
            self.maxConcurrent = maxConcurrent
            self.policy = policy
            self.targetTokenMs = targetTokenMs
            self.prefillTokensPerStep = prefillTokensPerStep
        }
    }

    public let model: BalconyModel
    public let tokenizer: any Tokenizer
    public let configuration: Configuration
    public let metrics: ServingMetrics

    // Shared with submitters, under `condition`.
    private let condition = NSCondition()
    private var incoming: [ServingTicket] = []
    private var inFlight = 0
    private var draining = false
    private var stopped = false
    private var thread: Thread?

    // Engine-thread state.
    private var waiting: [ServingTicket] = []
    private var active: [ActiveSequence] = []
    private var policy: ExitPolicy
    /// The exit the `slo` policy gave requests without their own target at the last step.
    private var policyExit: ExitChoice?
    /// Consecutive steps in which the policy found room for a deeper exit.
    private var deepenVotes = 0
    static let deepenAfterSteps = 8
    /// Activations of batched decode steps.
    private let scratch = Scratch()

    public init(model: BalconyModel, tokenizer: any Tokenizer, configuration: Configuration, metrics: ServingMetrics,
                latency: StepLatencyModel? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.configuration = configuration
        self.metrics = metrics
        let exits = model.exits.map { ExitChoice.exit($0) } + [.full]
        policy = ExitPolicy(exits: exits, latency: latency ?? StepLatencyModel(fixedMs: [:], perRowMs: [:]))
    }

    /// Measures decode steps at every exit with one row and with `rows` rows (on throw-away caches
    /// with a short context), for the `slo` policy's latency model.
    public static func calibrate(model: BalconyModel, rows: Int, steps: Int = 4) throws -> StepLatencyModel {
        let exits = model.exits.map { ExitChoice.exit($0) } + [.full]
        let rows = max(1, min(rows, BalconyModel.decodeBatchLimit))
        let scratch = Scratch()
        func measure(_ exit: ExitChoice, _ n: Int) throws -> Double {
            let caches = (0..<n).map { _ in model.makeCache(capacity: steps + 2) }
            for c in caches { _ = try model.forward([1 % model.config.vocabSize], cache: c, exit: exit) }
            var times: [Double] = []
            for s in 0..<steps {
                let t = Date()
                _ = try model.decode(caches.map { DecodeRow(cache: $0, token: (s + 2) % model.config.vocabSize, exit: exit) }, scratch: scratch)
                times.append(Date().timeIntervalSince(t) * 1000)
            }
            return MachineCeilings.median(times)
        }
        var single: [ExitChoice: Double] = [:], batched: [ExitChoice: Double] = [:]
        for e in exits {
            single[e] = try measure(e, 1)
            batched[e] = rows > 1 ? try measure(e, rows) : single[e]
        }
        return StepLatencyModel(single: single, batched: batched, rows: rows)
    }

    /// The latency model the `slo` policy uses (calibration plus what the steps measured).
    public var latencyModel: StepLatencyModel {
        condition.lock(); defer { condition.unlock() }
        return policy.latency
    }

    /// Starts the engine thread.
    public func start() {
        let t = Thread { [self] in loop() }
        t.name = "balcony-engine"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Queues a request. Throws `ServingError.tooManyRequests` at `maxConcurrent`, and
    /// `.shuttingDown` once `drain` was called.
    public func submit(_ request: ServingRequest) throws -> ServingHandle {
        try validate(request)
        let (stream, continuation) = AsyncStream<ServingEvent>.makeStream(bufferingPolicy: .unbounded)
        let ticket = ServingTicket(request: request, continuation: continuation)
        continuation.onTermination = { [weak ticket] _ in ticket?.cancel() }
        condition.lock()
        defer { condition.unlock() }
        guard !draining else { throw ServingError.shuttingDown }
        guard inFlight < configuration.maxConcurrent else { throw ServingError.tooManyRequests(limit: configuration.maxConcurrent) }
        inFlight += 1
        incoming.append(ticket)
        condition.signal()
        return ServingHandle(events: stream, ticket: ticket)
    }

    /// Requests running or waiting.
    public var requestsInFlight: Int {
        condition.lock(); defer { condition.unlock() }
        return inFlight
    }

    /// Stops taking requests, lets the running and waiting ones finish, then ends the thread.
    public func drain() async {
        beginDraining()
        while !isStopped { try? await Task.sleep(nanoseconds: 10_000_000) }
    }

    private func beginDraining() {
        condition.lock()
        draining = true
        condition.signal()
        condition.unlock()
    }

    private var isStopped: Bool {
        condition.lock(); defer { condition.unlock() }
        return stopped || thread == nil
    }

    private func validate(_ r: ServingRequest) throws {
        try r.sampling.validate()
        guard !r.prompt.isEmpty else { throw ServingError.invalidRequest("the prompt is empty") }
        let context = model.config.contextLength
        guard r.prompt.count < context else { throw ServingError.invalidRequest(GenerationError.promptTooLong(tokens: r.prompt.count, context: context).errorDescription!) }
        guard r.maxTokens >= 1 else { throw ServingError.invalidRequest("max_tokens must be at least 1") }
        for t in r.prompt where t < 0 || t >= model.config.vocabSize {
            throw ServingError.invalidRequest(ModelError.tokenOutOfRange(t, vocabularySize: model.config.vocabSize).errorDescription!)
        }
        if case let .fixed(e) = r.exit {
            do { try model.validate(e) } catch { throw ServingError.invalidRequest((error as? LocalizedError)?.errorDescription ?? "\(error)") }
        }
        if case let .latency(ms) = r.exit, !(ms > 0 && ms.isFinite) { throw ServingError.invalidRequest("latency_ms must be positive") }
    }

    // MARK: - The engine thread

    private func loop() {
        while nextIteration() {
            let t0 = Date()
            dropCancelled()
            prefillWaiting()
            let exits = decodeStep()
            if configuration.stepDelay > 0 && !exits.isEmpty { Thread.sleep(forTimeInterval: configuration.stepDelay) }
            let ms = Date().timeIntervalSince(t0) * 1000
            condition.lock()
            if !exits.isEmpty { policy.latency.observe(stepMs: ms, exits: exits, depth: model.layersRun) }
            condition.unlock()
            metrics.load(queued: waiting.count, active: active.count)
        }
        condition.lock()
        stopped = true
        condition.unlock()
    }

    /// Takes submitted requests; blocks while there is nothing to do. False when drained.
    private func nextIteration() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while true {
            waiting += incoming
            incoming.removeAll()
            if !waiting.isEmpty || !active.isEmpty { return true }
            if draining { return false }
            metrics.load(queued: 0, active: 0)
            condition.wait()
        }
    }

    private func release() {
        condition.lock()
        inFlight -= 1
        condition.unlock()
    }

    private func dropCancelled() {
        for t in waiting where t.isCancelled {
            t.continuation.finish()
            release()
        }
        waiting.removeAll { $0.isCancelled }
        for s in active where s.ticket.isCancelled {
            s.ticket.continuation.finish()
            release()
        }
        active.removeAll { $0.ticket.isCancelled }
    }

    /// The exit a sequence runs at in a step among `rows` sequences.
    private func exit(for request: ExitRequest, current: ExitChoice?, rows: Int) -> ExitChoice {
        switch request {
        case let .fixed(e): return e
        case let .latency(ms):
            return policy.choose(targetMs: ms, rows: rows, current: current)
        case .auto:
            guard configuration.policy == .slo, let target = configuration.targetTokenMs else { return .full }
            // One decision per step for all of them: the batch stays at one exit (the most sharing), and
            // requests switch only when that decision changes, not each on its own.
            return policyExit ?? policy.choose(targetMs: target, rows: rows, current: current)
        }
    }

    private func prefillWaiting() {
        var budget = configuration.prefillTokensPerStep
        var admitted = 0
        while active.count < configuration.maxBatch, let t = waiting.first, admitted == 0 || budget >= t.request.prompt.count {
            waiting.removeFirst()
            admitted += 1
            budget -= t.request.prompt.count
            let r = t.request
            let seq = ActiveSequence(ticket: t, model: model, tokenizer: tokenizer)
            let e = exit(for: r.exit, current: nil, rows: active.count + 1)
            do {
                let logits = try model.forward(r.prompt, cache: seq.cache, exit: e)
                if accept(seq, logits: logits, exit: e) { active.append(seq) }
            } catch {
                fail(seq, error)
            }
        }
    }

    /// One token for every running sequence; returns the exits of the rows that ran.
    private func decodeStep() -> [ExitChoice] {
        let rows = active.count
        guard rows > 0 else { return [] }
        if configuration.policy == .slo, let target = configuration.targetTokenMs {
            var e = policy.choose(targetMs: target, rows: rows, current: policyExit)
            // Shallower at once (the target is at stake); deeper only after `deepenAfterSteps` steps in a
            // row with room for it, because every switch costs a catch-up pass over the earlier positions.
            if let current = policyExit, model.depth(e) > model.depth(current) {
                deepenVotes += 1
                if deepenVotes < Self.deepenAfterSteps { e = current } else { deepenVotes = 0 }
            } else {
                deepenVotes = 0
            }
            policyExit = e
            metrics.policy(exit: e, predictedMs: policy.latency.predict(e, rows: rows))
        }
        let exits = active.map { exit(for: $0.ticket.request.exit, current: $0.exit, rows: rows) }
        var finished = Set<ObjectIdentifier>()
        var start = 0
        while start < rows {
            let end = min(rows, start + BalconyModel.decodeBatchLimit)
            let chunk = Array(start..<end)
            do {
                let logits = try model.decode(chunk.map { DecodeRow(cache: active[$0].cache, token: active[$0].pending, exit: exits[$0]) },
                                              scratch: scratch)
                for (i, l) in zip(chunk, logits) where !accept(active[i], logits: l, exit: exits[i]) {
                    finished.insert(ObjectIdentifier(active[i]))
                }
            } catch {
                for i in chunk {
                    fail(active[i], error)
                    finished.insert(ObjectIdentifier(active[i]))
                }
            }
            start = end
        }
        metrics.step(rows: rows)
        active.removeAll { finished.contains(ObjectIdentifier($0)) }
        return exits
    }

    /// Samples the next token from `logits` and streams it. False when the sequence has finished.
    private func accept(_ s: ActiveSequence, logits: [Float], exit: ExitChoice) -> Bool {
        let next = s.sampler.sample(logits)
        let r = s.ticket.request
        if tokenizer.eosTokenIds.contains(next) {
            finish(s, .stop, flush: true)
            return false
        }
        s.record(next, exit: exit)
        let now = Date()
        metrics.token(exit: exit, secondsSincePrevious: now.timeIntervalSince(s.lastToken), first: s.out.count == 1)
        s.lastToken = now
        let (text, stopped) = s.stopper.append(s.decoder.append(next))
        if !text.isEmpty { s.ticket.continuation.yield(.text(text, exit: exit)) }
        if stopped {
            finish(s, .stop, flush: false)
            return false
        }
        if s.out.count >= r.maxTokens || s.cache.count >= s.cache.capacity {
            finish(s, .length, flush: true)
            return false
        }
        s.pending = next
        return true
    }

    private func finish(_ s: ActiveSequence, _ reason: FinishReason, flush: Bool) {
        var reason = reason
        if flush {
            let (text, stopped) = s.stopper.append(s.decoder.finish())
            let rest = stopped ? text : text + s.stopper.finish()
            if stopped { reason = .stop }
            if !rest.isEmpty { s.ticket.continuation.yield(.text(rest, exit: s.exit ?? .full)) }
        }
        let r = s.ticket.request
        s.ticket.continuation.yield(.finished(ServingCompletion(finishReason: reason, promptTokens: r.prompt.count,
                                                                completionTokens: s.out.count, exits: s.usage, tokens: s.out)))
        s.ticket.continuation.finish()
        metrics.requestFinished(seconds: Date().timeIntervalSince(s.ticket.submitted), promptTokens: r.prompt.count)
        release()
    }

    private func fail(_ s: ActiveSequence, _ error: Error) {
        let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
        s.ticket.continuation.yield(.failed(message))
        s.ticket.continuation.finish()
        release()
    }
}

/// A running request's state on the engine thread.
final class ActiveSequence {
    let ticket: ServingTicket
    let cache: BalconyCache
    var sampler: Sampler
    var decoder: StreamingDecoder
    var stopper: StopSequenceMatcher
    var out: [Int] = []
    /// The last sampled token, fed at the next decode step.
    var pending = 0
    /// The exit of the latest token.
    var exit: ExitChoice?
    var usage: [ExitUsage] = []
    var lastToken: Date

    init(ticket: ServingTicket, model: BalconyModel, tokenizer: any Tokenizer) {
        let r = ticket.request
        self.ticket = ticket
        cache = model.makeCache(capacity: min(model.config.contextLength, r.prompt.count + r.maxTokens))
        sampler = Sampler(r.sampling)
        decoder = StreamingDecoder(tokenizer: tokenizer, previous: r.prompt.last)
        stopper = StopSequenceMatcher(stops: r.stop)
        lastToken = ticket.submitted
    }

    func record(_ token: Int, exit e: ExitChoice) {
        out.append(token)
        exit = e
        if let i = usage.firstIndex(where: { $0.exit == e.description }) { usage[i].tokens += 1 } else { usage.append(ExitUsage(exit: e.description, tokens: 1)) }
    }
}
