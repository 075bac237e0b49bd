import Foundation
import Testing
@testable import BalconyCore

/// `--self-generate`: a corpus sampled from stories260K itself, reproducible from the seed.
@Suite struct SelfGenerateTests {
    /// stories260K with its context cut to `context` positions, so that samples end by filling
    /// the context as well as at EOS, and debug-build tests stay short.
    static func stories(context: Int = 512) throws -> (LlamaModel, any Tokenizer) {
        var weights = try ModelLoader.load(path: BalconyTestSupport.stories.path).weights
        weights.config.contextLength = context
        return (try LlamaModel(weights: weights, threads: 1), try TokenizerLoader.load(url: BalconyTestSupport.storiesTokenizer))
    }

    @Test func sameSeedSameCorpusOtherSeedOtherCorpus() throws {
        let (model, tokenizer) = try Self.stories(context: 24)
        let a = try SelfGeneratedCorpus.generate(model: model, tokenizer: tokenizer, tokens: 80, seed: 5)
        let b = try SelfGeneratedCorpus.generate(model: model, tokenizer: tokenizer, tokens: 80, seed: 5)
        let c = try SelfGeneratedCorpus.generate(model: model, tokenizer: tokenizer, tokens: 30, seed: 6)
        #expect(a == b)
        #expect(Array(a.joined().prefix(30)) != Array(c.joined()))
        #expect(a.reduce(0) { $0 + $1.count } == 80)
        // A full context (23 tokens after BOS) ends a sample; the budget cuts the last one.
        #expect(a.count >= 4)
        #expect(a.allSatisfy { $0.count <= 23 })
        #expect(a.contains { $0.count == 23 })
        for doc in a {
            #expect(!doc.isEmpty && doc.count < model.config.contextLength)
            #expect(doc.allSatisfy { $0 >= 0 && $0 < model.config.vocabSize })
            #expect(!doc.contains { tokenizer.eosTokenIds.contains($0) }, "EOS ends a sample and is not part of it")
        }
        // The samples read as stories, and they pack into training data.
        #expect(tokenizer.decode(a[0]).contains(" "))
        let data = try TrainingData(documents: a, separator: try DocumentSeparator.of(tokenizer), sequenceLength: 32, seed: 5)
        #expect(data.tokenCount == 80 + a.count)
    }

    @Test func theFirstSampleIsTheModelsOwnDrawFromBOS() throws {
        let (model, tokenizer) = try Self.stories()
        let corpus = try SelfGeneratedCorpus.generate(model: model, tokenizer: tokenizer, tokens: 30, seed: 1)
        // Re-derive the first sample with the generator and the documented per-sample seed.
        let sampling = SamplingParameters(temperature: 1, topK: 0, topP: 1, seed: NormalGenerator.seed(1, name: "self-generate 0"))
        let (first, _) = try Generator(model: model, tokenizer: tokenizer)
            .generate(prompt: [1], parameters: GenerationParameters(maxTokens: 30, sampling: sampling)) { _ in true }
        #expect(corpus[0] == first)
    }

    @Test func progressCanStopAndBadCountsAreRefused() throws {
        let (model, tokenizer) = try Self.stories(context: 16)
        var calls = 0
        let partial = try SelfGeneratedCorpus.generate(model: model, tokenizer: tokenizer, tokens: 10_000, seed: 2) { _ in
            calls += 1
            return false
        }
        #expect(calls == 1 && partial.count == 1)
        #expect(throws: TrainingDataError.self) { _ = try SelfGeneratedCorpus.generate(model: model, tokenizer: tokenizer, tokens: 0, seed: 1) }
    }
}
