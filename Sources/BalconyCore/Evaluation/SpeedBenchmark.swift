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
    /// The SGEMM kernel the products ran on (`BLAS.kernelName`).
    public var gemm_kernel: String
    /// The FMA peak with 1 ... `threads` threads (`MachineCeilings.fmaPeak`), on `fma_vectors`.
    public var fma_peak_gflops: [Double]
    public var fma_vectors: String
    /// SGEMM and prefill as fractions of the FMA peak at `threads` threads.
    public var gemm_peak_fraction: Double
    public var prefill_peak_fraction: Double
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
        let peaks = MachineCeilings.fmaPeaks()
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
            gemm_gflops: gemm / 1e9, prefill_gemm_fraction: prefillRate * flopsPerToken / gemm,
            gemm_kernel: BLAS.kernelName, fma_peak_gflops: peaks.map { $0 / 1e9 }, fma_vectors: MachineCeilings.fmaVectors,
            gemm_peak_fraction: gemm / peaks.last!, prefill_peak_fraction: prefillRate * flopsPerToken / peaks.last!)
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

/// Speed of one exit (or the full model) in `balcony bench --balconies`.
public struct ExitSpeed: Codable, Sendable {
    public var exit: String
    public var prefill_tokens_per_s: Double
    public var decode_tokens_per_s: Double
    public var measured_speedup: Double
    public var ideal_speedup: Double
    /// Resident-set high-water mark of the process after this measurement, MiB.
    public var peak_memory_mib: Double
}

/// Self-speculative decoding against plain full-model decoding, greedy, same prompt.
public struct SpeculativeSpeed: Codable, Sendable {
    public var draft_exit: Int
    public var draft_tokens: Int
    public var acceptance_rate: Double
    public var tokens_per_verification: Double
    public var measured_speedup: Double
    /// The cost model's speedup for the measured acceptance: tokens committed per round over the
    /// cost of a round (drafting steps at the exit's cost + verifying layers k..N-1 and the head).
    public var predicted_speedup: Double
    public var identical_to_full: Bool
}

extension SpeedBenchmark {
    /// Prefill and decode speed of every exit and the full model.
    public static func exitTable(model: BalconyModel, promptTokens: Int, genTokens: Int, repeats: Int) throws -> [ExitSpeed] {
        let costs = ExitCostModel(model)
        let p = max(1, min(promptTokens, model.config.contextLength))
        let ids = syntheticTokens(p, vocab: model.config.vocabSize)
        var rows: [ExitSpeed] = []
        let decodeMs = try exitDecodeMilliseconds(model: model, exits: costs.exits, tokens: genTokens, repeats: repeats)
        for e in costs.exits {
            var times: [Double] = []
            for _ in 0..<repeats {
                let cache = model.makeCache(capacity: p)
                let t = Date()
                _ = try model.forward(ids, cache: cache, exit: e)
                times.append(Date().timeIntervalSince(t))
            }
            rows.append(ExitSpeed(exit: e.description, prefill_tokens_per_s: Double(p) / MachineCeilings.median(times),
                                  decode_tokens_per_s: 1000 / decodeMs[e]!, measured_speedup: decodeMs[.full]! / decodeMs[e]!,
                                  ideal_speedup: costs.costs[e]!.idealSpeedup, peak_memory_mib: peakMemoryMiB()))
        }
        return rows
    }

    /// Greedy self-speculative decoding from `prompt` against plain greedy decoding at full depth.
    /// With `oracle`, drafts are the full model's own greedy tokens (see `SpeculativeDecoder.oracle`).
    public static func speculative(model: BalconyModel, tokenizer: any Tokenizer, prompt: [Int], draftExit: Int,
                                   draftTokens: Int, genTokens: Int, repeats: Int, oracle: Bool = false) throws -> SpeculativeSpeed {
        let params = GenerationParameters(maxTokens: genTokens, sampling: .greedy, stopAtEOS: false)
        let plain = Generator(model: model.base, tokenizer: tokenizer, balconies: model, exit: .full)
        var spec = try SpeculativeDecoder(model: model, tokenizer: tokenizer, draftExit: draftExit, draftTokens: draftTokens)
        if oracle { spec.oracle = try plain.generate(prompt: prompt, parameters: params) { _ in true }.0 }
        var plainTimes: [Double] = [], specTimes: [Double] = []
        var reference: [Int] = [], drafted: [Int] = []
        var stats = SpeculativeStats()
        for _ in 0..<repeats {
            let (a, sa) = try plain.generate(prompt: prompt, parameters: params) { _ in true }
            let (b, sb, s) = try spec.generate(prompt: prompt, parameters: params) { _ in true }
            plainTimes.append(sa.decodeSeconds / Double(max(a.count, 1)))
            specTimes.append(sb.decodeSeconds / Double(max(b.count, 1)))
            reference = a
            drafted = b
            stats = s
        }
        let costs = ExitCostModel(model)
        let ck = costs.costs[.exit(draftExit)]!.costFraction
        let verify = 1 - costs.prefixFractions[draftExit]!
        let draftsPerRound = Double(stats.drafted) / Double(max(stats.rounds, 1))
        let predicted = stats.tokensPerRound / (draftsPerRound * ck + verify)
        return SpeculativeSpeed(draft_exit: draftExit, draft_tokens: draftTokens, acceptance_rate: stats.acceptanceRate,
                                tokens_per_verification: stats.tokensPerRound,
                                measured_speedup: MachineCeilings.median(plainTimes) / MachineCeilings.median(specTimes),
                                predicted_speedup: predicted, identical_to_full: reference == drafted)
    }

    /// VmHWM from /proc/self/status (0 where unavailable).
    public static func peakMemoryMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}
