import ArgumentParser
import BalconyCore
import Foundation

struct ScoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Negative log-likelihood of each token of a text, its mean and the perplexity.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var exits: BalconyOptions
    @Option(help: "Text to score.") var text: String?
    @Option(help: "File whose text to score.") var file: String?
    @Flag(help: "Print JSON: tokens, nll, mean_nll, perplexity.") var json = false

    func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("give exactly one of --text and --file") }
    }

    struct Output: Codable {
        var tokens: [Int]
        var nll: [Double]
        var mean_nll: Double
        var perplexity: Double
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load()
            let tok = try rt.requiredTokenizer
            let body: String
            if let file {
                guard let s = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ModelFileError.cannotOpen(file, "not a readable UTF-8 text file")
                }
                body = s
            } else {
                body = text ?? ""
            }
            let ids = tok.encodeForModel(body)
            guard ids.count >= 2 else {
                throw GenerationError.invalidParameter("the text has \(ids.count) token(s); scoring needs at least two (one of context, one to score)")
            }
            let balconies = try exits.load(rt)
            let choice = try exits.choose(balconies) { m in
                try SpeedBenchmark.exitDecodeMilliseconds(model: m, exits: ExitCostModel(m).exits, tokens: 16, repeats: 1)
            }
            let scores: TokenScores
            if let balconies, choice != .full {
                scores = try Perplexity.score(tokens: ids, window: rt.model.config.contextLength) { try balconies.tokenLogProbabilities(tokens: $0, exit: choice) }
            } else {
                scores = try Perplexity.score(model: rt.model, tokens: ids)
            }
            if json {
                print(try jsonLine(Output(tokens: scores.tokens, nll: scores.nll, mean_nll: scores.meanNLL, perplexity: scores.perplexity), pretty: false))
            } else {
                for (id, nll) in zip(scores.tokens, scores.nll) {
                    print(String(format: "%8.4f  %6d  %@", nll, id, tok.piece(for: id).debugDescription))
                }
                print(String(format: "tokens %d  mean nll %.4f nats  perplexity %.4f", scores.tokens.count, scores.meanNLL, scores.perplexity))
            }
        }
    }
}
