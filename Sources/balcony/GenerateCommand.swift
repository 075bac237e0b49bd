import ArgumentParser
import BalconyCore
import Foundation

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt. The continuation goes to stdout, figures to stderr.",
        discussion: """
        With --balconies, tokens can come from an exit (--exit, --budget, --latency-ms), from a schedule that switches
        exits while generating (--exit-schedule "0:2,64:full"), or from self-speculative decoding (--draft-exit K), whose
        output is the full model's.
        """)

    @OptionGroup var options: ModelOptions
    @OptionGroup var exits: BalconyOptions
    @Option(help: "Prompt text (default: none, i.e. BOS only).") var prompt: String = ""
    @Option(help: "Tokens to generate at most.") var maxTokens: Int = 256
    @Option(help: "Sampling temperature; 0 = greedy.") var temperature: Float = 1.0
    @Option(help: "Keep only the K most likely tokens (0 = off).") var topK: Int = 0
    @Option(help: "Nucleus sampling threshold (1 = off).") var topP: Float = 0.9
    @Option(help: "Random seed (default: from the clock).") var seed: UInt64?
    @Option(help: "Exit per generated token, e.g. \"0:2,64:full\" (token index : exit).") var exitSchedule: String?
    @Option(help: "Self-speculative decoding: this exit drafts, the full model verifies.") var draftExit: Int?
    @Option(help: "Tokens drafted per verification.") var draftTokens: Int = 4

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0") }
        try SamplingParameters(temperature: temperature, topK: topK, topP: topP).validate()
        if exitSchedule != nil && (exits.exit != nil || exits.budget != nil || exits.latencyMs != nil) {
            throw ValidationError("give --exit-schedule or one of --exit/--budget/--latency-ms, not both")
        }
        if draftExit != nil && (exitSchedule != nil || exits.exit != nil || exits.budget != nil || exits.latencyMs != nil) {
            throw ValidationError("--draft-exit produces the full model's output; it does not combine with other exit choices")
        }
        if draftTokens < 1 { throw ValidationError("--draft-tokens must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load()
            let tokenizer = try rt.requiredTokenizer
            let balconies = try exits.load(rt)
            let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP,
                                              seed: seed ?? UInt64(Date().timeIntervalSince1970 * 1000))
            let parameters = GenerationParameters(maxTokens: maxTokens, sampling: sampling)
            let write: (GeneratedToken) -> Bool = { piece in
                if !piece.text.isEmpty { writeOut(piece.text) }
                return true
            }
            if let k = draftExit {
                guard let balconies else { throw BalconyError.noBalconies(.exit(k)) }
                let spec = try SpeculativeDecoder(model: balconies, tokenizer: tokenizer, draftExit: k, draftTokens: draftTokens)
                let ids = Generator(model: rt.model, tokenizer: tokenizer).promptTokens(prompt)
                let (_, stats, s) = try spec.generate(prompt: ids, parameters: parameters, onToken: write)
                printError(String(format: "\nprompt tokens: %d, generated: %d, prefill: %.1f tokens/s, decode: %.1f tokens/s; draft exit %d: %d/%d drafts accepted (%.0f%%), %.2f tokens per verification",
                                  stats.promptTokens, stats.generatedTokens, stats.prefillTokensPerSecond,
                                  Double(stats.generatedTokens) / max(stats.decodeSeconds, 1e-9), k, s.accepted, s.drafted,
                                  100 * s.acceptanceRate, s.tokensPerRound))
                return
            }
            let schedule: ExitSchedule
            if let text = exitSchedule {
                schedule = try ExitSchedule(parsing: text)
                if balconies == nil, let e = schedule.exits.first(where: { $0 != .full }) { throw BalconyError.noBalconies(e) }
            } else {
                schedule = ExitSchedule(try exits.choose(balconies) { m in
                    try SpeedBenchmark.exitDecodeMilliseconds(model: m, exits: ExitCostModel(m).exits, tokens: 16, repeats: 1)
                })
            }
            let generator = Generator(model: rt.model, tokenizer: tokenizer, balconies: balconies, schedule: schedule)
            let (_, stats) = try generator.generate(prompt: generator.promptTokens(prompt), parameters: parameters, onToken: write)
            let exitNote = schedule.entries.count == 1 ? (schedule.exits[0] == .full ? "" : ", exit \(schedule.exits[0])")
                : ", exits " + schedule.entries.map { "\($0.start):\($0.exit)" }.joined(separator: ",")
            printError(String(format: "\nprompt tokens: %d, generated: %d, prefill: %.1f tokens/s, decode: %.1f tokens/s%@",
                              stats.promptTokens, stats.generatedTokens, stats.prefillTokensPerSecond, stats.decodeTokensPerSecond, exitNote))
        }
    }
}
