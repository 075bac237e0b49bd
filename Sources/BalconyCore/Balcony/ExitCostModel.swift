import Foundation

/// Per-token cost of one exit: exit k runs base layers `0 ..< k`, its balcony layer and the shared
/// head; the full model runs all N layers and the head (DESIGN.md, "Cost of exit k").
public struct ExitCost: Sendable, Codable, Equatable {
    /// "full" or the exit depth.
    public var exit: String
    /// Decoder layers run per token.
    public var layers: Int
    /// Multiply-adds x 2 of the linear layers and head per decoded token (attention excluded: it
    /// grows with the context and is the same share at every exit).
    public var flopsPerToken: Double
    /// Bytes of weights read per decoded token: what bounds decode speed on a CPU.
    public var bytesPerToken: Int
    /// `bytesPerToken` as a fraction of the full model's.
    public var costFraction: Double
    /// Full cost / this exit's cost: the speedup if decode is bandwidth-bound.
    public var idealSpeedup: Double
}

/// Costs of every exit of a `BalconyModel`, and the policies that map a budget to an exit.
public struct ExitCostModel: Sendable {
    public let exits: [ExitChoice]
    public let costs: [ExitChoice: ExitCost]
    /// Cost fraction of reading out after k base layers through the final norm and head, without a
    /// balcony (the early-exit baseline), for every depth 1..<N.
    public let earlyExitFractions: [Int: Double]
    /// Bytes of base layers `0 ..< k` over the full model's bytes per token, for k in 0...N.
    public let prefixFractions: [Int: Double]

    public init(_ model: BalconyModel) {
        let base = model.base.weights
        func layerBytes(_ l: LayerWeights) -> Int {
            l.matrices.reduce(0) { $0 + $1.byteCount } + 4 * (2 * l.attentionNorm.count)
        }
        func layerFlops(_ l: LayerWeights) -> Double {
            2 * Double(l.matrices.reduce(0) { $0 + $1.rows * $1.cols })
        }
        let headBytes = base.output.byteCount + base.tokenEmbedding.byteCount / max(base.tokenEmbedding.rows, 1)
        let headFlops = 2 * Double(base.output.rows * base.output.cols)
        let prefixBytes = base.layers.reduce(into: [0]) { $0.append($0.last! + layerBytes($1)) }
        let prefixFlops = base.layers.reduce(into: [0.0]) { $0.append($0.last! + layerFlops($1)) }
        let n = base.config.layerCount
        let fullBytes = prefixBytes[n] + headBytes
        var costs: [ExitChoice: ExitCost] = [:]
        costs[.full] = ExitCost(exit: "full", layers: n, flopsPerToken: prefixFlops[n] + headFlops, bytesPerToken: fullBytes,
                                costFraction: 1, idealSpeedup: 1)
        for k in model.exits {
            let b = model.layers[k]!
            let bytes = prefixBytes[k] + layerBytes(b) + 4 * b.attentionNorm.count + headBytes
            costs[.exit(k)] = ExitCost(exit: "\(k)", layers: k + 1, flopsPerToken: prefixFlops[k] + layerFlops(b) + headFlops,
                                       bytesPerToken: bytes, costFraction: Double(bytes) / Double(fullBytes),
                                       idealSpeedup: Double(fullBytes) / Double(bytes))
        }
        self.costs = costs
        var early: [Int: Double] = [:]
        for k in 1..<n { early[k] = Double(prefixBytes[k] + headBytes) / Double(fullBytes) }
        earlyExitFractions = early
        var prefix: [Int: Double] = [:]
        for k in 0...n { prefix[k] = Double(prefixBytes[k]) / Double(fullBytes) }
        prefixFractions = prefix
        self.exits = model.exits.map { ExitChoice.exit($0) } + [.full]
    }

    /// Exits from shallowest to full, with their costs.
    public var table: [ExitCost] { exits.map { costs[$0]! } }

    /// The deepest exit whose cost fraction fits `budget` (a fraction of the full model's per-token
    /// cost, in (0, 1]; 1 = the full model).
    public func exit(forBudget budget: Double) throws -> ExitChoice {
        guard budget > 0, budget.isFinite else { throw BudgetError.invalidBudget(budget) }
        if budget >= 1 { return .full }
        guard let pick = exits.filter({ costs[$0]!.costFraction <= budget + 1e-12 }).last else {
            let cheapest = exits.first.flatMap { costs[$0] }?.costFraction ?? 1
            throw BudgetError.budgetTooSmall(budget, cheapest: cheapest)
        }
        return pick
    }

    /// The deepest exit whose measured per-token decode time (`msPerToken`) fits `latencyMs`.
    public func exit(forLatencyMs latencyMs: Double, msPerToken: [ExitChoice: Double]) throws -> ExitChoice {
        guard latencyMs > 0, latencyMs.isFinite else { throw BudgetError.invalidLatency(latencyMs) }
        guard let pick = exits.filter({ (msPerToken[$0] ?? .infinity) <= latencyMs }).last else {
            let fastest = exits.compactMap { msPerToken[$0] }.min() ?? .infinity
            throw BudgetError.latencyTooSmall(latencyMs, fastest: fastest)
        }
        return pick
    }
}

/// Errors of mapping a budget to an exit.
public enum BudgetError: LocalizedError, Equatable {
    case invalidBudget(Double)
    case budgetTooSmall(Double, cheapest: Double)
    case invalidLatency(Double)
    case latencyTooSmall(Double, fastest: Double)

    public var errorDescription: String? {
        switch self {
        case let .invalidBudget(b):
            return "budget \(b) is not a fraction of the full model's cost in (0, 1]"
        case let .budgetTooSmall(b, cheapest):
            return String(format: "no exit fits budget %.3f: the cheapest exit costs %.3f of the full model; raise --budget or train a shallower exit", b, cheapest)
        case let .invalidLatency(l):
            return "latency target \(l) ms must be positive"
        case let .latencyTooSmall(l, fastest):
            return String(format: "no exit decodes within %.2f ms per token on this machine (fastest: %.2f ms); raise --latency-ms", l, fastest)
        }
    }
}
