import Foundation
import Testing
@testable import BalconyCore

/// `train --self-generate N --instructions FILE`: the model's answers to instructions through a chat
/// template, reproducible from the recipe whatever the batch, and cached with its recipe checked.
@Suite struct InstructionCorpusTests {
    static let instructions = ["Tell a story about a cat.", "Write about the sea.", "Explain rain.", "List three colors.", "Say hello."]

    static func recipe(tokens: Int = 400, seed: UInt64 = 3, fingerprint: String = "model-a", answer: Int = 40) -> InstructionCorpusRecipe {
        InstructionCorpusRecipe(modelFingerprint: fingerprint, instructions: instructions, tokens: tokens, seed: seed,
                                maxAnswerTokens: answer, template: "chatml")
    }

    static func generate(_ recipe: InstructionCorpusRecipe, batch: Int) throws -> [[Int]] {
        let (model, tokenizer) = try SelfGenerateTests.stories(context: 96)
        return try InstructionCorpus.generate(model: model, tokenizer: tokenizer, template: .chatml, instructions: instructions,
                                              recipe: recipe, batch: batch)
    }

    @Test func theCorpusDependsOnTheRecipeNotOnTheBatch() throws {
        let one = try Self.generate(Self.recipe(), batch: 1)
        let five = try Self.generate(Self.recipe(), batch: 5)
        #expect(one == five)
        #expect(one.reduce(0) { $0 + $1.count } == 400)
        let other = try Self.generate(Self.recipe(seed: 4), batch: 5)
        #expect(other != one)

        // Each document is an instruction's prompt through the template, then an answer of at most 40 tokens.
        let (_, tokenizer) = try SelfGenerateTests.stories(context: 96)
        let prompts = try Self.instructions.map { text -> [Int] in
            var ids = try ChatTemplate.chatml.encode([ChatMessage(role: "user", content: text)], tokenizer: tokenizer)
            if ids.first == tokenizer.bosTokenId { ids.removeFirst() }
            return ids
        }
        var used = Set<Int>()
        for (i, doc) in one.enumerated() {
            // The last document is cut to the budget, possibly inside its prompt.
            let last = i == one.count - 1
            let p = try #require(prompts.firstIndex { doc.starts(with: $0) || (last && $0.starts(with: doc)) },
                                 "document \(i) does not start with a prompt")
            used.insert(p)
            if i < one.count - 1 { #expect(doc.count - prompts[p].count <= 40) }
            #expect(!doc.contains { tokenizer.eosTokenIds.contains($0) })
        }
        // The first pass over the list uses each instruction once, in a seeded order.
        #expect(one.count >= Self.instructions.count ? used.count == Self.instructions.count : true)
    }

    @Test func instructionListsAreTrimmedAndEmptyOnesRefused() throws {
        #expect(InstructionCorpus.instructions(fromText: "  a \n\n# comment\nb\r\n   \n") == ["a", "b"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.txt")
        try "\n# nothing\n".write(to: empty, atomically: true, encoding: .utf8)
        #expect(throws: InstructionCorpusError.noInstructions(empty.path)) { try InstructionCorpus.instructions(from: empty) }
    }

    @Test func promptsWithNoRoomForAnAnswerAreRefused() throws {
        let (model, tokenizer) = try SelfGenerateTests.stories(context: 16)
        #expect(throws: InstructionCorpusError.self) {
            try InstructionCorpus.generate(model: model, tokenizer: tokenizer, template: .chatml,
                                           instructions: ["Write a very long story about a cat who lived in a house by the sea."],
                                           recipe: Self.recipe(), batch: 2)
        }
    }

    @Test func cachedCorporaRoundTripAndRefuseOtherRecipes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ic-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = Self.recipe(tokens: 7)
        let url = InstructionCorpusFile.defaultURL(for: recipe, environment: ["BALCONY_CACHE": dir.path])
        #expect(url.path.hasPrefix(dir.path + "/corpora/corpus-") && url.pathExtension == "jsonl")
        let docs = [[1, 2, 3], [4, 5, 6, 7]]
        try InstructionCorpusFile.write(docs, recipe: recipe, to: url)
        #expect(try InstructionCorpusFile.read(from: url, expecting: recipe, vocabSize: 512) == docs)

        #expect(throws: InstructionCorpusError.otherModel(file: url.path, corpusModel: "model-a", model: "model-b")) {
            try InstructionCorpusFile.read(from: url, expecting: Self.recipe(tokens: 7, fingerprint: "model-b"), vocabSize: 512)
        }
        #expect(throws: InstructionCorpusError.otherRecipe(file: url.path, field: "seed")) {
            try InstructionCorpusFile.read(from: url, expecting: Self.recipe(tokens: 7, seed: 9), vocabSize: 512)
        }
        #expect(throws: InstructionCorpusError.self) { try InstructionCorpusFile.read(from: url, expecting: recipe, vocabSize: 6) }
        // A corpus cut short (an interrupted copy) is refused, not trained on.
        let text = try String(contentsOf: url, encoding: .utf8)
        try String(text.dropLast(12)).write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: InstructionCorpusError.self) { try InstructionCorpusFile.read(from: url, expecting: recipe, vocabSize: 512) }
        try "not json\n".write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: InstructionCorpusError.malformed(file: url.path, line: 1, why: "no corpus header")) {
            try InstructionCorpusFile.read(from: url, expecting: recipe, vocabSize: 512)
        }
        // Recipes that differ have different cache files.
        #expect(Self.recipe(seed: 1).cacheKey != Self.recipe(seed: 2).cacheKey)
        #expect(Self.recipe().cacheKey == Self.recipe().cacheKey)
    }
}
