import Foundation

/// A training corpus sampled from the teacher itself (`--self-generate N`), for when no data that
/// resembles the base model's pretraining data is at hand: distillation only needs inputs the
/// teacher finds typical, and its own samples are exactly that.
///
/// Each sample starts from BOS (or, for tokenizers without BOS, the smallest EOS id, the GPT-2
/// convention) and is drawn at temperature 1 with top-k and top-p off until the model emits an
/// end-of-sequence id or its context is full; then the next sample starts. Sample `i` uses its
/// own sampler seed derived from `seed` and `i`, so the corpus depends only on the model, the
/// tokenizer's special ids, `tokens` and `seed`. The start and end tokens are not part of the
/// documents; the packer puts separators back between them.
public enum SelfGeneratedCorpus {
    /// Consecutive empty samples (EOS straight after BOS) before giving up.
    public static let maxEmptySamples = 64

    /// Samples documents from `model` until they hold `tokens` tokens in total (the last one is
    /// cut to fit).
    /// - Parameter progress: called after each sample with the tokens so far; returning false
    ///   stops early with what has been generated.
    /// - Throws: `TrainingDataError` for a non-positive count, a tokenizer without BOS or EOS, or
    ///   a model that keeps ending its samples at once; generation errors.
    public static func generate(model: LlamaModel, tokenizer: any Tokenizer, tokens: Int, seed: UInt64,
                                progress: ((Int) -> Bool)? = nil) throws -> [[Int]] {
        guard tokens > 0 else { throw TrainingDataError.invalidSetting("--self-generate needs a positive token count, got \(tokens)") }
        let start = try DocumentSeparator.of(tokenizer).token
        guard model.config.contextLength >= 2 else {
            throw TrainingDataError.invalidSetting("the model's context (\(model.config.contextLength)) is too short to sample from")
        }
        let generator = Generator(model: model, tokenizer: tokenizer)
        var documents: [[Int]] = []
        var total = 0
        var sample: UInt64 = 0
        var empty = 0
        while total < tokens {
            let sampling = SamplingParameters(temperature: 1, topK: 0, topP: 1,
                                              seed: NormalGenerator.seed(seed, name: "self-generate \(sample)"))
            sample += 1
            // The context bounds a sample; the remaining budget cuts the last one.
            let parameters = GenerationParameters(maxTokens: min(tokens - total, model.config.contextLength - 1),
                                                  sampling: sampling, stopAtEOS: true)
            let (ids, _) = try generator.generate(prompt: [start], parameters: parameters) { _ in true }
            if ids.isEmpty {
                empty += 1
                guard empty < maxEmptySamples else {
                    throw TrainingDataError.invalidSetting("the model ended \(empty) samples in a row right after the start token; it cannot generate a corpus, pass training data instead")
                }
                continue
            }
            empty = 0
            documents.append(ids)
            total += ids.count
            if let progress, !progress(total) { break }
        }
        return documents
    }
}
