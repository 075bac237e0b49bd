import Foundation

/// A Prometheus histogram: cumulative bucket counts, sum and count.
struct Histogram {
    let bounds: [Double]
    private(set) var counts: [Int]
    private(set) var sum = 0.0
    private(set) var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = [Int](repeating: 0, count: bounds.count)
    }

    mutating func observe(_ v: Double) {
        for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
        sum += v
        count += 1
    }

    func render(_ name: String, labels: String = "") -> String {
        let sep = labels.isEmpty ? "" : ","
        var s = ""
        for (b, c) in zip(bounds, counts) { s += "\(name)_bucket{\(labels)\(sep)le=\"\(b)\"} \(c)\n" }
        s += "\(name)_bucket{\(labels)\(sep)le=\"+Inf\"} \(count)\n"
        let braces = labels.isEmpty ? "" : "{\(labels)}"
        s += "\(name)_sum\(braces) \(sum)\n\(name)_count\(braces) \(count)\n"
        return s
    }
}

/// The server's counters, gauges and histograms, rendered in the Prometheus text format
/// (`GET /metrics`). Updated from the engine thread and the HTTP handlers; every access takes a lock.
public final class ServingMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]  // "endpoint|status" -> count
    private var promptTokens = 0
    private var completionTokens = 0
    private var tokensByExit: [String: Int] = [:]
    private var requestSeconds = Histogram(bounds: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120])
    private var firstTokenSeconds = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    private var tokenSeconds = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28])
    private var queueDepth = 0
    private var activeSequences = 0
    private var batchSteps = 0
    private var batchRows = 0
    private var policyExit = ""
    private var predictedTokenMs = 0.0
    /// Static lines (policy name, target) added by the server.
    private let info: String

    public init(info: [String: String] = [:]) {
        let labels = info.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",")
        self.info = "# HELP balcony_server_info Server configuration.\n# TYPE balcony_server_info gauge\nbalcony_server_info{\(labels)} 1\n"
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock(); defer { lock.unlock() }
        return body()
    }

    /// One HTTP request answered on `endpoint` with `status`.
    public func request(endpoint: String, status: Int) {
        locked { requests["\(endpoint)|\(status)", default: 0] += 1 }
    }

    public func requestFinished(seconds: Double, promptTokens p: Int) {
        locked {
            requestSeconds.observe(seconds)
            promptTokens += p
        }
    }

    func token(exit: ExitChoice, secondsSincePrevious: Double, first: Bool) {
        locked {
            completionTokens += 1
            tokensByExit[exit.description, default: 0] += 1
            if first { firstTokenSeconds.observe(secondsSincePrevious) } else { tokenSeconds.observe(secondsSincePrevious) }
        }
    }

    func load(queued: Int, active: Int) {
        locked {
            queueDepth = queued
            activeSequences = active
        }
    }

    func step(rows: Int) {
        locked {
            batchSteps += 1
            batchRows += rows
        }
    }

    func policy(exit: ExitChoice, predictedMs: Double) {
        locked {
            policyExit = exit.description
            predictedTokenMs = predictedMs
        }
    }

    /// Tokens served per exit so far.
    public var tokensPerExit: [String: Int] { locked { tokensByExit } }

    /// The Prometheus text exposition.
    public func render() -> String {
        locked {
            var s = info
            s += "# HELP balcony_requests_total HTTP requests by endpoint and status.\n# TYPE balcony_requests_total counter\n"
            for key in requests.keys.sorted() {
                let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
                s += "balcony_requests_total{endpoint=\"\(parts[0])\",status=\"\(parts[1])\"} \(requests[key]!)\n"
            }
            s += "# HELP balcony_prompt_tokens_total Prompt tokens of finished requests.\n# TYPE balcony_prompt_tokens_total counter\n"
            s += "balcony_prompt_tokens_total \(promptTokens)\n"
            s += "# HELP balcony_completion_tokens_total Generated tokens.\n# TYPE balcony_completion_tokens_total counter\n"
            s += "balcony_completion_tokens_total \(completionTokens)\n"
            s += "# HELP balcony_tokens_by_exit_total Generated tokens by the exit that produced them.\n# TYPE balcony_tokens_by_exit_total counter\n"
            for k in tokensByExit.keys.sorted() { s += "balcony_tokens_by_exit_total{exit=\"\(k)\"} \(tokensByExit[k]!)\n" }
            s += "# HELP balcony_request_duration_seconds Time from submission to the last token.\n# TYPE balcony_request_duration_seconds histogram\n"
            s += requestSeconds.render("balcony_request_duration_seconds")
            s += "# HELP balcony_time_to_first_token_seconds Time from submission to the first token.\n# TYPE balcony_time_to_first_token_seconds histogram\n"
            s += firstTokenSeconds.render("balcony_time_to_first_token_seconds")
            s += "# HELP balcony_token_latency_seconds Time between consecutive tokens of a request.\n# TYPE balcony_token_latency_seconds histogram\n"
            s += tokenSeconds.render("balcony_token_latency_seconds")
            s += "# HELP balcony_queue_depth Requests waiting for a batch slot.\n# TYPE balcony_queue_depth gauge\nbalcony_queue_depth \(queueDepth)\n"
            s += "# HELP balcony_active_sequences Requests being decoded.\n# TYPE balcony_active_sequences gauge\nbalcony_active_sequences \(activeSequences)\n"
            s += "# HELP balcony_decode_steps_total Batched decode steps.\n# TYPE balcony_decode_steps_total counter\nbalcony_decode_steps_total \(batchSteps)\n"
            s += "# HELP balcony_decode_rows_total Sequences decoded, summed over steps (rows / steps = mean batch).\n# TYPE balcony_decode_rows_total counter\nbalcony_decode_rows_total \(batchRows)\n"
            if !policyExit.isEmpty {
                s += "# HELP balcony_policy_exit The exit the policy gives requests without an explicit one (0 = full).\n# TYPE balcony_policy_exit gauge\n"
                s += "balcony_policy_exit{exit=\"\(policyExit)\"} \(Int(policyExit) ?? 0)\n"
                s += "# HELP balcony_policy_predicted_token_ms Predicted per-token latency at the chosen exit and current load.\n# TYPE balcony_policy_predicted_token_ms gauge\n"
                s += "balcony_policy_predicted_token_ms \(predictedTokenMs)\n"
            }
            return s
        }
    }
}
