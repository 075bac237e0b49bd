import ArgumentParser
import BalconyCore
import Foundation

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt. The continuation goes to stdout, figures to stderr.")

    @OptionGroup var options: ModelOptions
    @Option(help: "Prompt text (default: none, i.e. BOS only).") var prompt: String = ""
    @Option(help: "Tokens to generate at most.") var maxTokens: Int = 256
    @Option(help: "Sampling temperature; 0 = greedy.") var temperature: Float = 1.0
    @Option(help: "Keep only the K most likely tokens (0 = off).") var topK: Int = 0
    @Option(help: "Nucleus sampling threshold (1 = off).") var topP: Float = 0.9
    @Option(help: "Random seed (default: from the clock).") var seed: UInt64?

    func validate() throws {
        if maxTokens < 0 { throw ValidationError("--max-tokens must be >= 0") }
        try SamplingParameters(temperature: temperature, topK: topK, topP: topP).validate()
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load()
            let tokenizer = try rt.requiredTokenizer
            let generator = Generator(model: rt.model, tokenizer: tokenizer)
            let ids = generator.promptTokens(prompt)
            let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP,
                                              seed: seed ?? UInt64(Date().timeIntervalSince1970 * 1000))
            let (_, stats) = try generator.generate(prompt: ids, parameters: GenerationParameters(maxTokens: maxTokens, sampling: sampling)) { piece in
                if !piece.text.isEmpty { writeOut(piece.text) }
                return true
            }
            printError(String(format: "\nprompt tokens: %d, generated: %d, prefill: %.1f tokens/s, decode: %.1f tokens/s",
                              stats.promptTokens, stats.generatedTokens, stats.prefillTokensPerSecond, stats.decodeTokensPerSecond))
        }
    }
}
