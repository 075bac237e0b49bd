import Foundation

/// Quality of one way of computing next-token distributions, against the full model, on a text.
public struct ExitQuality: Sendable, Codable {
    /// "full", "balcony" or "early-exit".
    public var method: String
    /// Exit depth, nil for the full model.
    public var exit: Int?
    /// Fraction of the full model's per-token cost.
    public var cost: Double
    public var perplexity: Double
    public var meanNLL: Double
    /// Mean KL(full || this) per token, nats.
    public var kl: Double
    /// Fraction of tokens whose argmax agrees with the full model's.
    public var agreement: Double
    public var tokens: Int

    enum CodingKeys: String, CodingKey {
        case method, exit, cost, perplexity, meanNLL = "mean_nll", kl, agreement, tokens
    }
}

/// Per-exit perplexity, KL from the full model and top-1 agreement, over a token sequence scored
/// in context-length windows (the same windows for every method), and the early-exit baseline:
/// the base model's hidden state after k layers read out through its final norm and head.
public enum ExitEvaluation {
    public static func evaluate(model: BalconyModel, tokens: [Int], exits: [Int]? = nil, earlyExit: Bool = true,
                                window: Int? = nil) throws -> [ExitQuality] {
        let c = model.config
        let vocab = c.vocabSize
        let ctx = max(2, min(window ?? c.contextLength, c.contextLength))
        let depths = exits ?? model.exits
        let costs = ExitCostModel(model)
        struct Acc { var nll = 0.0, kl = 0.0, agree = 0, n = 0 }
        var full = Acc()
        var balcony = [Int: Acc](), early = [Int: Acc]()
        // Non-overlapping windows keep this simple and identical across methods.
        var begin = 0
        while begin + 1 < tokens.count {
            let end = min(tokens.count, begin + ctx)
            let win = Array(tokens[begin..<end])
            let n = win.count - 1
            let fullLogits = try model.forward(win, cache: model.makeCache(capacity: win.count), exit: .full, outputs: .all)
            var fullLP = [Float](repeating: 0, count: n * vocab)
            var fullArg = [Int](repeating: 0, count: n)
            fullLogits.withUnsafeBufferPointer { f in
                fullLP.withUnsafeMutableBufferPointer { o in
                    for i in 0..<n {
                        Kernels.logSoftmax(f.baseAddress! + i * vocab, vocab, out: o.baseAddress! + i * vocab)
                        fullArg[i] = Sampler.argmax(UnsafeBufferPointer(start: o.baseAddress! + i * vocab, count: vocab))
                        full.nll -= Double(o[i * vocab + win[i + 1]])
                    }
                }
            }
            full.agree += n
            full.n += n
            func score(_ logits: [Float], into acc: inout Acc) {
                var lp = [Float](repeating: 0, count: vocab)
                logits.withUnsafeBufferPointer { l in
                    lp.withUnsafeMutableBufferPointer { o in
                        for i in 0..<n {
                            Kernels.logSoftmax(l.baseAddress! + i * vocab, vocab, out: o.baseAddress!)
                            acc.nll -= Double(o[win[i + 1]])
                            var kl = 0.0
                            for v in 0..<vocab {
                                let lpFull = Double(fullLP[i * vocab + v])
                                kl += exp(lpFull) * (lpFull - Double(o[v]))
                            }
                            acc.kl += kl
                            if Sampler.argmax(UnsafeBufferPointer(o)) == fullArg[i] { acc.agree += 1 }
                        }
                    }
                }
                acc.n += n
            }
            for k in depths {
                let logits = try model.forward(win, cache: model.makeCache(capacity: win.count), exit: .exit(k), outputs: .all)
                score(Array(logits.prefix(n * vocab)), into: &balcony[k, default: Acc()])
                if earlyExit {
                    score(try earlyExitLogits(model.base, win, depth: k, rows: n), into: &early[k, default: Acc()])
                }
            }
            begin = end - 1  // the next window predicts the token after this one's last
        }
        func row(_ method: String, _ k: Int?, _ cost: Double, _ a: Acc) -> ExitQuality {
            let mean = a.nll / Double(max(a.n, 1))
            return ExitQuality(method: method, exit: k, cost: cost, perplexity: exp(mean), meanNLL: mean,
                               kl: a.kl / Double(max(a.n, 1)), agreement: Double(a.agree) / Double(max(a.n, 1)), tokens: a.n)
        }
        var rows = [row("full", nil, 1, full)]
        for k in depths {
            rows.append(row("balcony", k, costs.costs[.exit(k)]!.costFraction, balcony[k]!))
            if earlyExit {
                rows.append(row("early-exit", k, costs.earlyExitFractions[k] ?? 0, early[k]!))
            }
        }
        return rows
    }

    /// Logits of the first `rows` positions read out after base layer `depth` through the final
    /// norm and the head (LayerSkip-style early exit without training).
    public static func earlyExitLogits(_ model: LlamaModel, _ tokens: [Int], depth: Int, rows: Int) throws -> [Float] {
        let c = model.config
        let cache = model.makeCache(capacity: tokens.count)
        try model.check(tokens: tokens, cache: cache)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: tokens.count * c.dim)
        defer { x.deallocate() }
        model.embed(tokens, into: x)
        model.runLayers(0..<depth, x: x, tokens: tokens.count, start: 0, cache: cache)
        return [Float](unsafeUninitializedCapacity: rows * c.vocabSize) { buf, n in
            model.head(x, rows: rows, logits: buf.baseAddress!)
            n = rows * c.vocabSize
        }
    }
}
