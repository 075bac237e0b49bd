import ArgumentParser
import BalconyCore
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prefill and decode speed against this machine's bandwidth and SGEMM ceilings.")

    @OptionGroup var options: ModelOptions
    @Option(help: "Prompt length for the prefill measurement.") var promptTokens: Int = 512
    @Option(help: "Tokens to decode for the decode measurement.") var genTokens: Int = 64
    @Option(help: "Runs per measurement; medians are reported.") var repeats: Int = 3
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var exitOptions: BalconyOptions
    @Option(help: "Also measure self-speculative decoding drafted by this exit.") var draftExit: Int?
    @Option(help: "Tokens drafted per verification.") var draftTokens: Int = 4
    @Flag(help: "Test mode: drafts are the full model's own greedy tokens (the exit still runs), so every draft is accepted.")
    var draftOracle = false
    @Flag(help: "Measure training throughput instead: whole steps (frozen forward, balconies, head) on random tokens.")
    var train = false
    @Option(help: "With --train: exit depths (default: N/4, N/2, 3N/4).") var trainExits: String?
    @Option(help: "With --train: sequences per batch.") var batchSize: Int = 16
    @Option(help: "With --train: tokens per sequence (default: min(256, context)).") var seqLen: Int?
    @Option(help: "With --train: measured steps (one more runs first, unmeasured).") var steps: Int = 5
    @Flag(help: "Measure SGEMM instead: the model's prefill and training shapes (--prompt-tokens rows) on Balcony's kernels and the system BLAS.")
    var gemm = false

    struct Report: Encodable {
        var base: SpeedReport
        var exits: [ExitSpeed]?
        var speculative: SpeculativeSpeed?

        func encode(to encoder: Encoder) throws {
            try base.encode(to: encoder)
            enum K: String, CodingKey { case exits, speculative }
            var c = encoder.container(keyedBy: K.self)
            try c.encodeIfPresent(exits, forKey: .exits)
            try c.encodeIfPresent(speculative, forKey: .speculative)
        }
    }

    func validate() throws {
        if promptTokens < 1 || genTokens < 1 || repeats < 1 { throw ValidationError("--prompt-tokens, --gen-tokens and --repeats must be positive") }
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load(requireTokenizer: false)
            if train { return try runTraining(rt) }
            if gemm { return try runGEMM(rt) }
            let r = try SpeedBenchmark.run(model: rt.model, promptTokens: promptTokens, genTokens: genTokens, repeats: repeats)
            var report = Report(base: r)
            if let balconies = try exitOptions.load(rt) {
                report.exits = try SpeedBenchmark.exitTable(model: balconies, promptTokens: promptTokens, genTokens: genTokens, repeats: repeats)
                if let k = draftExit {
                    let tok = rt.tokenizer ?? ToyIdsTokenizer(vocabularySize: rt.model.config.vocabSize)
                    let prompt = rt.tokenizer.map { Generator(model: rt.model, tokenizer: $0).promptTokens("Once upon a time") } ?? [1]
                    report.speculative = try SpeedBenchmark.speculative(model: balconies, tokenizer: tok, prompt: prompt, draftExit: k,
                                                                        draftTokens: draftTokens, genTokens: genTokens, repeats: repeats,
                                                                        oracle: draftOracle)
                }
            } else if draftExit != nil {
                throw BalconyError.noBalconies(.exit(draftExit!))
            }
            if json {
                print(try jsonLine(report, pretty: false))
                return
            }
            let packed = rt.model.weights.packedMatrixCount > 0 ? " packed for decode" : ""
            print("model    \(rt.path) (\(rt.model.weights.weightTypes.sorted().joined(separator: ", "))\(packed), \(formatCount(rt.model.config.parameterCount)) parameters), \(r.threads) threads")
            let peaks = r.fma_peak_gflops.enumerated().map { String(format: "%.1f (%d thread%@)", $1, $0 + 1, $0 == 0 ? "" : "s") }
            print("machine  read bandwidth \(String(format: "%.1f", r.read_bandwidth_gb_s)) GB/s; FMA peak \(peaks.joined(separator: ", ")) GFLOP/s on \(r.fma_vectors)")
            print(String(format: "SGEMM    %.1f GFLOP/s = %.0f%% of peak (%dx%dx%d, %@)", r.gemm_gflops, 100 * r.gemm_peak_fraction,
                         r.prompt_tokens, rt.model.config.hiddenDim, rt.model.config.dim, r.gemm_kernel))
            print(String(format: "prefill  %8.1f tokens/s  (%d tokens; %.1f GFLOP/s = %.0f%% of SGEMM, %.0f%% of peak)",
                         r.prefill_tokens_per_s, r.prompt_tokens, r.prefill_gflops, 100 * r.prefill_gemm_fraction,
                         100 * r.prefill_peak_fraction))
            print(String(format: "decode   %8.1f tokens/s  (%d tokens; %@ per token; bandwidth bound %.1f tokens/s, reached %.0f%%)",
                         r.decode_tokens_per_s, r.gen_tokens, formatBytes(r.bytes_per_token), r.decode_bound_tokens_per_s,
                         100 * r.decode_bandwidth_fraction))
            if let exits = report.exits {
                print("exit   prefill tok/s   decode tok/s   measured speedup   ideal speedup   peak MiB")
                for e in exits {
                    let name = e.exit + String(repeating: " ", count: max(0, 5 - e.exit.count))
                    print(String(format: "%@  %13.1f  %13.1f  %16.2fx  %14.2fx  %9.0f", name, e.prefill_tokens_per_s, e.decode_tokens_per_s,
                                 e.measured_speedup, e.ideal_speedup, e.peak_memory_mib))
                }
            }
            if let s = report.speculative {
                print(String(format: "speculative: draft exit %d x %d tokens, acceptance %.0f%%, %.2f tokens per verification, speedup %.2fx measured vs %.2fx predicted (%.0f%%), output %@ full greedy",
                             s.draft_exit, s.draft_tokens, 100 * s.acceptance_rate, s.tokens_per_verification, s.measured_speedup,
                             s.predicted_speedup, 100 * s.measured_speedup / max(s.predicted_speedup, 1e-9), s.identical_to_full ? "identical to" : "DIFFERS from"))
            }
        }
    }
}

extension BenchCommand {
    func runTraining(_ rt: LoadedRuntime) throws {
        let c = rt.model.config
        guard batchSize >= 1, steps >= 1 else { throw ValidationError("--batch-size and --steps must be positive") }
        let exits = try trainExits.map(parseExitList) ?? TrainCommand.defaultExits(layers: c.layerCount)
        let r = try TrainingBenchmark.throughput(model: rt.model, exits: exits, sequences: batchSize,
                                                 tokens: seqLen ?? min(256, c.contextLength), steps: steps)
        if json {
            print(try jsonLine(r, pretty: false))
            return
        }
        print("model    \(rt.path) (\(formatCount(c.parameterCount)) parameters), \(r.threads) threads")
        print(String(format: "training exits %@, %d x %d tokens, median of %d steps",
                     exits.map(String.init).joined(separator: ","), r.sequences, r.tokens_per_sequence, r.steps))
        print(String(format: "step     %.3f s = %.0f tokens/s (CPU %.3f s per step)", r.step_s, r.tokens_per_s, r.cpu_s))
        for (name, s, g) in [("  teacher", r.teacher_s, r.teacher_gflop), ("  balcony", r.balcony_s, r.balcony_gflop),
                             ("  head/KL", r.head_s, r.head_gflop), ("  other", r.other_s, 0)] {
            print(name.padding(toLength: 9, withPad: " ", startingAt: 0)
                  + String(format: "%7.3f s  %4.0f%%  %8.2f GFLOP", s, 100 * s / r.step_s, g))
        }
        print(String(format: "achieved %.1f GFLOP/s = %.0f%% of SGEMM %.1f GFLOP/s (1024^3, %@, same run)",
                     r.gflops, 100 * r.gemm_fraction, r.gemm_gflops, r.gemm_kernel))
        print(String(format: "peak     FMA %.1f GFLOP/s (%d threads): steps at %.0f%%, SGEMM at %.0f%%",
                     r.fma_peak_gflops, r.threads, 100 * r.peak_fraction, 100 * r.gemm_peak_fraction))
    }
}

extension BenchCommand {
    func runGEMM(_ rt: LoadedRuntime) throws {
        let (peak, rows) = GEMMBenchmark.run(config: rt.model.config, tokens: promptTokens, repeats: repeats)
        if json {
            struct Report: Encodable { var threads: Int; var fma_peak_gflops: Double; var products: [GEMMShapeSpeed] }
            print(try jsonLine(Report(threads: ComputeThreads.count, fma_peak_gflops: peak / 1e9, products: rows), pretty: false))
            return
        }
        print("model    \(rt.path), \(ComputeThreads.count) threads; FMA peak \(String(format: "%.1f", peak / 1e9)) GFLOP/s on \(MachineCeilings.fmaVectors)")
        print("product               layout   m x n x k             GFLOP/s  of peak  kernel")
        for r in rows {
            let shape = "\(r.m) x \(r.n) x \(r.k)"
            print(r.name.padding(toLength: 22, withPad: " ", startingAt: 0) + r.layout.padding(toLength: 9, withPad: " ", startingAt: 0)
                  + shape.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: "%8.1f  %6.0f%%  %@", r.gflops, 100 * r.peak_fraction, r.kernel))
        }
    }
}

/// Token ids as text, for benchmarking models that come without a tokenizer.
struct ToyIdsTokenizer: Tokenizer {
    var vocabularySize: Int
    var bosTokenId: Int? { 1 }
    var eosTokenIds: Set<Int> { [] }
    var addsBOS: Bool { true }
    var kind: String { "ids" }
    func encode(_ text: String) -> [Int] { [] }
    func piece(for id: Int) -> String { "<\(id)>" }
    func bytes(for id: Int, previous: Int?) -> [UInt8] { Array("<\(id)>".utf8) }
}
