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

    func validate() throws {
        if promptTokens < 1 || genTokens < 1 || repeats < 1 { throw ValidationError("--prompt-tokens, --gen-tokens and --repeats must be positive") }
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load(requireTokenizer: false)
            let r = try SpeedBenchmark.run(model: rt.model, promptTokens: promptTokens, genTokens: genTokens, repeats: repeats)
            if json {
                print(try jsonLine(r, pretty: false))
                return
            }
            print("model    \(rt.path) (\(rt.model.weights.weightTypes.sorted().joined(separator: ", ")), \(formatCount(rt.model.config.parameterCount)) parameters), \(r.threads) threads")
            print(String(format: "machine  read bandwidth %.1f GB/s, SGEMM %.1f GFLOP/s (%dx%dx%d)", r.read_bandwidth_gb_s, r.gemm_gflops,
                         r.prompt_tokens, rt.model.config.hiddenDim, rt.model.config.dim))
            print(String(format: "prefill  %8.1f tokens/s  (%d tokens; %.1f GFLOP/s = %.0f%% of SGEMM)",
                         r.prefill_tokens_per_s, r.prompt_tokens, r.prefill_gflops, 100 * r.prefill_gemm_fraction))
            print(String(format: "decode   %8.1f tokens/s  (%d tokens; %@ per token; bandwidth bound %.1f tokens/s, reached %.0f%%)",
                         r.decode_tokens_per_s, r.gen_tokens, formatBytes(r.bytes_per_token), r.decode_bound_tokens_per_s,
                         100 * r.decode_bandwidth_fraction))
        }
    }
}
