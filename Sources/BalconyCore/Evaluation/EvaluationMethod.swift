import Foundation

/// One way of computing next-token distributions that the evaluation compares: the full model, a
/// balcony exit, or a baseline at the same depth. Every metric (perplexity, KL, agreement,
/// multiple-choice accuracy, decode speed) goes through `logits` and `decoder`, so the methods
/// differ only in which layers run.
public struct EvaluationMethod: Sendable {
    /// "full", "balcony", "balcony:LABEL" (a further balcony file), "early-exit" or "shortgpt".
    public var method: String
    /// Exit depth (base layers before the read-out), nil for the full model.
    public var exit: Int?
    /// Bytes of weights read per decoded token as a fraction of the full model's (`ExitCostModel`).
    public var cost: Double
    /// Base layers run per token, in order (the balcony layer not included).
    public var baseLayers: [Int]
    /// Logits `[tokens.count, vocab]` of every position of `tokens`, from an empty cache.
    public var logits: @Sendable (_ tokens: [Int]) throws -> [Float]
    /// A fresh single-sequence decoder: feed one token, get the next-token logits.
    public var decoder: @Sendable (_ capacity: Int) -> (Int) throws -> [Float]

    /// The series this method belongs to in tables and charts ("balcony", "early-exit", ...).
    public var series: String { method }
}

extension EvaluationMethod {
    /// The full model.
    public static func full(_ model: LlamaModel) -> EvaluationMethod {
        subset(model, method: "full", exit: nil, layers: Array(0..<model.config.layerCount), cost: 1)
    }

    /// A balcony exit (`method` names the balcony file's series).
    public static func balcony(_ model: BalconyModel, exit k: Int, method: String = "balcony") -> EvaluationMethod {
        let cost = ExitCostModel(model).costs[.exit(k)]?.costFraction ?? 0
        return EvaluationMethod(
            method: method, exit: k, cost: cost, baseLayers: Array(0..<k),
            logits: { tokens in try model.forward(tokens, cache: model.makeCache(capacity: tokens.count), exit: .exit(k), outputs: .all) },
            decoder: { capacity in
                let cache = model.makeCache(capacity: capacity)
                return { token in try model.forward([token], cache: cache, exit: .exit(k)) }
            })
    }

    /// The early-exit baseline: base layers `0 ..< k` read out through the final norm and head
    /// (LayerSkip-style exits without their training).
    public static func earlyExit(_ model: LlamaModel, exit k: Int, costs: ExitCostModel) -> EvaluationMethod {
        subset(model, method: "early-exit", exit: k, layers: Array(0..<k), cost: costs.subsetFraction(Array(0..<k)))
    }

    /// The layer-pruning baseline: only `layers` (k of them) run, then the final norm and head.
    public static func shortGPT(_ model: LlamaModel, layers: [Int], costs: ExitCostModel) -> EvaluationMethod {
        subset(model, method: "shortgpt", exit: layers.count, layers: layers, cost: costs.subsetFraction(layers))
    }

    /// The base model on a subset of its layers, read out through the final norm and head.
    static func subset(_ model: LlamaModel, method: String, exit: Int?, layers: [Int], cost: Double) -> EvaluationMethod {
        EvaluationMethod(
            method: method, exit: exit, cost: cost, baseLayers: layers,
            logits: { tokens in try model.forward(tokens, cache: model.makeCache(capacity: tokens.count), layers: layers, outputs: .all) },
            decoder: { capacity in
                let cache = model.makeCache(capacity: capacity)
                return { token in try model.forward([token], cache: cache, layers: layers) }
            })
    }

    /// Median per-token decode seconds over `tokens` greedy steps after a one-token prompt.
    public func decodeSecondsPerToken(tokens: Int, repeats: Int, vocab: Int) throws -> Double {
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let step = decoder(tokens + 1)
            var logits = try step(1 % vocab)
            let t = Date()
            for _ in 0..<tokens {
                logits = try step(logits.withUnsafeBufferPointer { Sampler.argmax($0) })
            }
            times.append(Date().timeIntervalSince(t) / Double(max(tokens, 1)))
        }
        return MachineCeilings.median(times)
    }
}

extension ExitCostModel {
    /// Cost fraction of running base `layers` (any subset) and the head, without a balcony.
    public func subsetFraction(_ layers: [Int]) -> Double {
        let n = prefixFractions.count - 1
        let head = 1 - prefixFractions[n]!
        return layers.reduce(head) { $0 + prefixFractions[$1 + 1]! - prefixFractions[$1]! }
    }
}
