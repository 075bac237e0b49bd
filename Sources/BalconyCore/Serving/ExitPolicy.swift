import Foundation

/// How the server picks exits for requests that do not name one.
public enum ServingPolicy: String, Sendable, CaseIterable {
    /// Requests without an explicit exit run the full model.
    case fixed
    /// Requests without an explicit exit get the deepest exit whose predicted per-token latency at the
    /// current load meets the target, re-decided at every decode step.
    case slo
}

/// Per-token latency of a decode step, by exit and batch size: `fixed(e) + perRow(e) x rows`,
/// calibrated at start-up and scaled by a correction that tracks what the steps really took.
///
/// A decode step's time is the latency every running request sees between two tokens, so this is the
/// quantity the `slo` policy holds. `fixed` is reading the weights once (decode is bandwidth-bound),
/// `perRow` the work that grows with the batch (attention, activations). The correction factor is an
/// exponential average of measured over predicted step time, so interleaved prefills, the context
/// growing and other load on the machine all push exits shallower.
public struct StepLatencyModel: Sendable {
    public var fixedMs: [ExitChoice: Double]
    public var perRowMs: [ExitChoice: Double]
    /// Measured / predicted, averaged over recent steps.
    public private(set) var correction = 1.0
    /// Weight of the newest step in the average.
    public var smoothing = 0.1

    public init(fixedMs: [ExitChoice: Double], perRowMs: [ExitChoice: Double]) {
        self.fixedMs = fixedMs
        self.perRowMs = perRowMs
    }

    /// The fit through measured step times with 1 row and with `rows` rows, per exit.
    public init(single: [ExitChoice: Double], batched: [ExitChoice: Double], rows: Int) {
        var fixed: [ExitChoice: Double] = [:], perRow: [ExitChoice: Double] = [:]
        for (e, t1) in single {
            let tn = batched[e] ?? t1 * Double(rows)
            let b = rows > 1 ? max(0, (tn - t1) / Double(rows - 1)) : 0
            perRow[e] = b
            fixed[e] = max(0, t1 - b)
        }
        self.init(fixedMs: fixed, perRowMs: perRow)
    }

    /// Predicted milliseconds of a step in which `rows` sequences all decode at `exit`.
    public func predict(_ exit: ExitChoice, rows: Int) -> Double {
        ((fixedMs[exit] ?? 0) + (perRowMs[exit] ?? 0) * Double(max(rows, 1))) * correction
    }

    /// Before correction, a step with rows at these exits: the deepest exit's fixed cost (the shared
    /// base layers are read once) plus every row's own cost.
    func uncorrected(_ exits: [ExitChoice], depth: (ExitChoice) -> Int) -> Double {
        guard let deepest = exits.max(by: { depth($0) < depth($1) }) else { return 0 }
        return (fixedMs[deepest] ?? 0) + exits.reduce(0) { $0 + (perRowMs[$1] ?? 0) }
    }

    /// Folds in a measured step.
    public mutating func observe(stepMs: Double, exits: [ExitChoice], depth: (ExitChoice) -> Int) {
        let predicted = uncorrected(exits, depth: depth)
        guard predicted > 0, stepMs > 0, !exits.isEmpty else { return }
        let ratio = min(max(stepMs / predicted, 0.25), 16)
        correction = (1 - smoothing) * correction + smoothing * ratio
    }
}

/// The `slo` decision: the deepest exit whose predicted per-token latency at the current load meets
/// the target. Going deeper again needs a margin (`deepenMargin` of the target) so that a load near the
/// boundary does not make requests flap between two exits at every step.
public struct ExitPolicy: Sendable {
    /// Exits from shallowest to full.
    public let exits: [ExitChoice]
    public var latency: StepLatencyModel
    public var deepenMargin = 0.85

    public init(exits: [ExitChoice], latency: StepLatencyModel) {
        self.exits = exits
        self.latency = latency
    }

    /// The exit for a request decoding among `rows` sequences, holding `targetMs` per token, that ran
    /// at `current` last step (nil for a new request).
    public func choose(targetMs: Double, rows: Int, current: ExitChoice?) -> ExitChoice {
        let currentIndex = current.flatMap { exits.firstIndex(of: $0) } ?? exits.count - 1
        for (i, e) in exits.enumerated().reversed() {
            let limit = i > currentIndex ? targetMs * deepenMargin : targetMs
            if latency.predict(e, rows: rows) <= limit { return e }
        }
        return exits[0]
    }
}
