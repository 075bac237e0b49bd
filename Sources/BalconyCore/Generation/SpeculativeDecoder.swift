import Foundation

/// Counts of one speculative generation.
public struct SpeculativeStats: Sendable, Codable {
    public var drafted = 0
    public var accepted = 0
    public var rounds = 0
    public var acceptanceRate: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }
    /// Tokens committed per verification pass.
    public var tokensPerRound: Double = 0
}

/// Self-speculative decoding (DESIGN.md, "Run-time semantics"): exit k drafts up to `draftTokens`
/// tokens one by one; the full model then scores all of them in one pass that reuses the draft's
/// base-layer KV caches (it runs only layers k..N-1 and the head over the drafted positions), and
/// the longest acceptable prefix is kept. Greedy output is token-for-token the full model's greedy
/// output; with temperature > 0 the standard rejection rule (accept a draft x with probability
/// min(1, p(x)/q(x)), else resample from max(0, p - q)) keeps the full model's distribution.
public struct SpeculativeDecoder {
    public let model: BalconyModel
    public let tokenizer: any Tokenizer
    public let draftExit: Int
    public let draftTokens: Int
    /// Test mode for benchmarks: the drafter still runs its exit (and pays its cost) but proposes
    /// `oracle[i]` as generated token i, e.g. the full model's own greedy output, so that every draft
    /// is accepted and the speedup at full acceptance can be measured on random-weight models.
    public var oracle: [Int]?

    public init(model: BalconyModel, tokenizer: any Tokenizer, draftExit: Int, draftTokens: Int = 4) throws {
        try model.validate(.exit(draftExit))
        guard draftTokens >= 1 else { throw GenerationError.invalidParameter("draft tokens must be at least 1, got \(draftTokens)") }
        self.model = model
        self.tokenizer = tokenizer
        self.draftExit = draftExit
        self.draftTokens = draftTokens
    }

    /// Generates after `prompt`; `onToken` receives each committed token (return false to stop).
    @discardableResult
    public func generate(prompt: [Int], parameters: GenerationParameters,
                         onToken: (GeneratedToken) throws -> Bool) throws -> ([Int], GenerationStats, SpeculativeStats) {
        try parameters.sampling.validate()
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        let context = model.config.contextLength
        guard prompt.count < context else { throw GenerationError.promptTooLong(tokens: prompt.count, context: context) }
        var stats = GenerationStats()
        stats.promptTokens = prompt.count
        var spec = SpeculativeStats()
        var out: [Int] = []
        guard parameters.maxTokens > 0 else { return (out, stats, spec) }

        let capacity = min(context, prompt.count + parameters.maxTokens + draftTokens)
        let cache = model.makeCache(capacity: capacity)
        var sampler = Sampler(parameters.sampling)
        var decoder = StreamingDecoder(tokenizer: tokenizer, previous: prompt.last)
        let greedy = parameters.sampling.isGreedy
        let vocab = model.config.vocabSize
        var t0 = Date()
        // Everything but the last prompt token goes through the full model; the last one is the
        // "pending" token that each round feeds first.
        if prompt.count > 1 { _ = try model.forward(Array(prompt.dropLast()), cache: cache, exit: .full) }
        stats.prefillSeconds = Date().timeIntervalSince(t0)
        t0 = Date()
        var pending = prompt.last!
        var finished = false

        func commit(_ id: Int) throws -> Bool {
            if parameters.stopAtEOS && tokenizer.eosTokenIds.contains(id) { return false }
            out.append(id)
            stats.generatedTokens = out.count
            if try !onToken(GeneratedToken(id: id, text: decoder.append(id))) { return false }
            return out.count < parameters.maxTokens
        }

        while !finished {
            let m = cache.count + 1  // pending sits at position m - 1
            let room = min(draftTokens, parameters.maxTokens - out.count, cache.capacity - m)
            if room <= 0 {
                // No room left to draft: one plain full-model step.
                guard cache.count < cache.capacity else { break }
                let logits = try model.forward([pending], cache: cache, exit: .full)
                if let why = Sampler.problem(with: logits) { throw GenerationError.badLogits(position: cache.count, why) }
                let next = sampler.sample(logits)
                if try !commit(next) { break }
                pending = next
                continue
            }
            // Draft `room` tokens at exit k, feeding pending and all drafts but the last.
            var drafts: [Int] = []
            var draftProbs: [[Float]] = []
            var token = pending
            for _ in 0..<room {
                let logits = try model.forward([token], cache: cache, exit: .exit(draftExit))
                if let oracle, out.count + drafts.count < oracle.count {
                    token = oracle[out.count + drafts.count]
                    if !greedy { draftProbs.append(sampler.distribution(logits)) }
                } else if greedy {
                    token = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                } else {
                    let q = sampler.distribution(logits)
                    token = sampler.draw(q)
                    draftProbs.append(q)
                }
                drafts.append(token)
            }
            // Verify: full-model logits for positions m-1 ..< m-1+room, in one pass.
            let full = try model.logits(cache: cache, exit: .full, from: m - 1)
            spec.rounds += 1
            spec.drafted += drafts.count
            var accepted = 0
            var correction: Int? = nil
            for j in 0..<drafts.count {
                let row = Array(full[(j * vocab)..<((j + 1) * vocab)])
                if greedy {
                    let best = row.withUnsafeBufferPointer { Sampler.argmax($0) }
                    if best == drafts[j] { accepted += 1; continue }
                    correction = best
                } else {
                    let p = sampler.distribution(row), q = draftProbs[j]
                    let x = drafts[j]
                    if sampler.uniform() < min(1, p[x] / max(q[x], 1e-30)) { accepted += 1; continue }
                    var residual = zip(p, q).map { max(0, $0 - $1) }
                    let s = residual.reduce(0, +)
                    if s > 0 { residual = residual.map { $0 / s } } else { residual = p }
                    correction = sampler.draw(residual)
                }
                break
            }
            spec.accepted += accepted
            // Keep pending and the accepted drafts; forget the rest.
            cache.truncate(to: min(m + accepted, m - 1 + drafts.count))
            for j in 0..<accepted where !finished {
                if try !commit(drafts[j]) { finished = true }
            }
            if finished { break }
            if let c = correction {
                if try !commit(c) { break }
                pending = c
            } else {
                pending = drafts[drafts.count - 1]
            }
        }
        let rest = decoder.finish()
        if !rest.isEmpty { _ = try onToken(GeneratedToken(id: -1, text: rest)) }
        stats.decodeSeconds = Date().timeIntervalSince(t0)
        spec.tokensPerRound = spec.rounds > 0 ? Double(out.count) / Double(spec.rounds) : 0
        return (out, stats, spec)
    }
}
