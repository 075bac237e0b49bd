import Foundation

/// Prefill and decode speed of a model, beside the machine ceilings measured in the same run.
public struct SpeedReport: Codable, Sendable {
    public var threads: Int
    public var prompt_tokens: Int
    public var gen_tokens: Int
    public var repeats: Int
    public var prefill_tokens_per_s: Double
    public var decode_tokens_per_s: Double
    public var bytes_per_token: Int
    public var read_bandwidth_gb_s: Double
    /// Decode tokens/s the measured bandwidth allows: bandwidth / bytes of weights per token.
    public var decode_bound_tokens_per_s: Double
    public var decode_bandwidth_fraction: Double
    public var prefill_flops_per_token: Double
    public var prefill_gflops: Double
    public var gemm_gflops: Double
    public var prefill_gemm_fraction: Double
}

/// Measures a model's prefill and decode speed (medians of repeated runs).
public enum SpeedBenchmark {
    /// FLOPs to prefill one token of a `tokens`-long prompt: the linear layers plus attention
    /// (the head runs only for the last position).
    public static func prefillFlopsPerToken(_ c: LlamaConfig, tokens: Int) -> Double {
        let linear = Double(c.layerCount) * Double(c.dim * (c.qDim + 2 * c.kvDim) + c.qDim * c.dim + 3 * c.dim * c.hiddenDim)
        let attention = Double(c.layerCount) * 2 * Double(c.qDim) * Double(tokens + 1)  // QK^T and PV over the average causal length
        return 2 * linear + attention
    }

    /// Seconds to prefill `tokens` tokens from an empty cache (median of `repeats`).
    public static func prefillSeconds(model: LlamaModel, tokens: Int, repeats: Int) throws -> Double {
        let ids = syntheticTokens(tokens, vocab: model.config.vocabSize)
        var times: [Double] = []
        for _ in 0..<repeats {
            let cache = model.makeCache(capacity: tokens)
            let t = Date()
            _ = try model.forward(ids, cache: cache)
            times.append(Date().timeIntervalSince(t))
        }
        return MachineCeilings.median(times)
    }

    /// Seconds per decoded token after a one-token prompt (median over runs of the per-run mean).
    public static func decodeSecondsPerToken(model: LlamaModel, tokens: Int, repeats: Int) throws -> Double {
        var times: [Double] = []
        for _ in 0..<repeats {
            let cache = model.makeCache(capacity: tokens + 1)
            var logits = try model.forward([1 % model.config.vocabSize], cache: cache)
            let t = Date()
            for _ in 0..<tokens {
                let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                logits = try model.forward([next], cache: cache)
            }
            times.append(Date().timeIntervalSince(t) / Double(tokens))
        }
        return MachineCeilings.median(times)
    }

    public static func run(model: LlamaModel, promptTokens: Int, genTokens: Int, repeats: Int = 3) throws -> SpeedReport {
        let c = model.config
        let p = max(1, min(promptTokens, c.contextLength))
        let g = max(1, min(genTokens, c.contextLength - 1))
        let bandwidth = MachineCeilings.readBandwidth()
        let gemm = MachineCeilings.gemmFlops(m: p, n: c.hiddenDim, k: c.dim)
        let prefill = try prefillSeconds(model: model, tokens: p, repeats: repeats)
        let decode = try decodeSecondsPerToken(model: model, tokens: g, repeats: repeats)
        let bytes = model.weights.bytesPerToken
        let flopsPerToken = prefillFlopsPerToken(c, tokens: p)
        let prefillRate = Double(p) / prefill
        let decodeRate = 1 / decode
        return SpeedReport(
            threads: ComputeThreads.count, prompt_tokens: p, gen_tokens: g, repeats: repeats,
            prefill_tokens_per_s: prefillRate, decode_tokens_per_s: decodeRate, bytes_per_token: bytes,
            read_bandwidth_gb_s: bandwidth / 1e9, decode_bound_tokens_per_s: bandwidth / Double(bytes),
            decode_bandwidth_fraction: decodeRate * Double(bytes) / bandwidth,
            prefill_flops_per_token: flopsPerToken, prefill_gflops: prefillRate * flopsPerToken / 1e9,
            gemm_gflops: gemm / 1e9, prefill_gemm_fraction: prefillRate * flopsPerToken / gemm)
    }

    /// A fixed, varied token sequence (speed does not depend on the ids).
    static func syntheticTokens(_ n: Int, vocab: Int) -> [Int] {
        (0..<n).map { ($0 * 7919 + 13) % vocab }
    }

    /// Median per-token decode milliseconds at each exit, decoding `tokens` tokens after a
    /// one-token prompt (used by `--latency-ms` and the exits table).
    public static func exitDecodeMilliseconds(model: BalconyModel, exits: [ExitChoice], tokens: Int, repeats: Int) throws -> [ExitChoice: Double] {
        var out: [ExitChoice: Double] = [:]
        for e in exits {
            var times: [Double] = []
            for _ in 0..<repeats {
                let cache = model.makeCache(capacity: tokens + 1)
                var logits = try model.forward([1 % model.config.vocabSize], cache: cache, exit: e)
                let t = Date()
                for _ in 0..<tokens {
                    let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                    logits = try model.forward([next], cache: cache, exit: e)
                }
                times.append(Date().timeIntervalSince(t) * 1000 / Double(tokens))
            }
            out[e] = MachineCeilings.median(times)
        }
        return out
    }
}
