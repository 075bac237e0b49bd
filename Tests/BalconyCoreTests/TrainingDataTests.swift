import Foundation
import Testing
@testable import BalconyCore

/// The training-data pipeline: files to documents, packing, seeded holdout and shuffles, exact
/// resumption, and the errors for bad input.
@Suite struct TrainingDataTests {
    static func write(_ text: String, _ name: String, in temp: TemporaryDirectory) throws -> URL {
        let url = temp.file(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Runs `body`, expecting a `TrainingDataError` whose one-line message mentions `mentions`.
    func expectDataError(_ mentions: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected a TrainingDataError", sourceLocation: sourceLocation)
        } catch let error as TrainingDataError {
            let message = error.localizedDescription
            #expect(!message.contains("\n"), sourceLocation: sourceLocation)
            for m in mentions {
                #expect(message.contains(m), "\"\(message)\" does not mention \"\(m)\"", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected a TrainingDataError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    static func documents(_ count: Int, seed: UInt64 = 1) -> [[Int]] {
        var g = TinyModels.LCG(state: seed)
        return (0..<count).map { d in (0..<(5 + d % 7)).map { _ in 3 + Int((g.next() + 1) * 100) % 200 } }
    }

    // MARK: Files and documents

    @Test func foldersFilesAndDocumentRules() throws {
        let temp = try TemporaryDirectory()
        _ = try Self.write("First story.\n<|endoftext|>\n  Second story.  \n<|endoftext|>\n\n<|endoftext|>", "corpus/a.txt", in: temp)
        _ = try Self.write("# Notes\nOne document.\n", "corpus/b.md", in: temp)
        _ = try Self.write("{\"text\": \"json one\"}\n\n{\"text\": \"\", \"id\": 2}\n{\"id\": 3, \"text\": \"  json two\"}\n",
                           "corpus/sub/c.jsonl", in: temp)
        _ = try Self.write("ignored", "corpus/sub/d.csv", in: temp)
        _ = try Self.write("hidden", "corpus/.hidden.txt", in: temp)
        let single = try Self.write("Named directly. <|endoftext|> Two.", "extra.data", in: temp)

        let files = try TrainingDocuments.files([temp.file("corpus").path, single.path, temp.file("corpus/b.md").path])
        #expect(files.map(\.lastPathComponent) == ["a.txt", "b.md", "c.jsonl", "extra.data"])
        let documents = try files.flatMap { try TrainingDocuments.documents(in: $0) }
        #expect(documents == ["First story.", "Second story.", "# Notes\nOne document.", "json one", "  json two",
                              "Named directly.", "Two."])
    }

    @Test func malformedJSONLinesNameFileAndLine() throws {
        let temp = try TemporaryDirectory()
        let cases: [(String, [String])] = [
            ("{\"text\": \"ok\"}\n{\"text\": \"ok\"\n", ["bad.jsonl line 2", "not valid JSON"]),
            ("{\"text\": \"ok\"}\n\n{\"body\": \"no text\"}\n", ["line 3", "no \"text\" field"]),
            ("{\"text\": 5}\n", ["line 1", "\"text\" is not a string"]),
            ("[\"text\"]\n", ["line 1", "not an object"]),
        ]
        for (text, mentions) in cases {
            let url = try Self.write(text, "bad.jsonl", in: temp)
            expectDataError(mentions + ["JSON object with a \"text\" string"]) { _ = try TrainingDocuments.documents(in: url) }
        }
        let latin1 = temp.file("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: latin1)
        expectDataError(["latin1.txt", "not UTF-8"]) { _ = try TrainingDocuments.documents(in: latin1) }
    }

    @Test func emptyOrMissingDataIsRefused() throws {
        let tokenizer = try TokenizerLoader.load(url: BalconyTestSupport.storiesTokenizer)
        let temp = try TemporaryDirectory()
        let blank = try Self.write("  \n<|endoftext|>\n \n", "blank.txt", in: temp)
        let emptyJSON = try Self.write("{\"text\": \"\"}\n\n", "empty.jsonl", in: temp)
        expectDataError(["2 file(s)", "no text"]) {
            _ = try TrainingData.load(paths: [blank.path, emptyJSON.path], tokenizer: tokenizer, sequenceLength: 8, seed: 1)
        }
        let short = try Self.write("Once upon a time.", "short.txt", in: temp)
        expectDataError(["fewer than one sequence", "257 for sequence length 256", "lower the sequence length"]) {
            _ = try TrainingData.load(paths: [short.path], tokenizer: tokenizer, sequenceLength: 256, seed: 1)
        }
        expectDataError(["no training data given"]) { _ = try TrainingData.load(paths: [], tokenizer: tokenizer, sequenceLength: 8, seed: 1) }
        expectDataError(["nowhere.txt", "no such file"]) {
            _ = try TrainingData.load(paths: [temp.file("nowhere.txt").path], tokenizer: tokenizer, sequenceLength: 8, seed: 1)
        }
        try FileManager.default.createDirectory(at: temp.file("empty-folder/sub"), withIntermediateDirectories: true)
        _ = try Self.write("x", "empty-folder/sub/data.csv", in: temp)
        expectDataError(["empty-folder", "no .txt, .jsonl or .md"]) {
            _ = try TrainingData.load(paths: [temp.file("empty-folder").path], tokenizer: tokenizer, sequenceLength: 8, seed: 1)
        }
        expectDataError(["no text"]) { _ = try TrainingData(documents: [[], []], separator: .bos(1), sequenceLength: 4, seed: 1) }
        expectDataError(["leaves none to train on"]) {
            _ = try TrainingData(documents: [[5, 6, 7, 8, 9]], separator: .bos(1), sequenceLength: 2, holdoutFraction: 0.9, seed: 1)
        }
        expectDataError(["holdout fraction"]) {
            _ = try TrainingData(documents: [[5, 6, 7]], separator: .bos(1), sequenceLength: 2, holdoutFraction: 1, seed: 1)
        }
    }

    // MARK: Packing

    @Test func packingPutsSeparatorsBetweenDocumentsAndOverlapsByOneToken() throws {
        let bos = try TrainingData(documents: [[5, 6, 7], [], [8, 9]], separator: .bos(1), sequenceLength: 3, seed: 0)
        #expect(bos.tokenCount == 7 && bos.sequenceCount == 2 && bos.documentCount == 2)
        #expect(bos.sequence(0) == [1, 5, 6, 7])
        #expect(bos.sequence(1) == [7, 1, 8, 9])
        let eos = try TrainingData(documents: [[5, 6, 7], [8, 9]], separator: .eos(2), sequenceLength: 3, seed: 0)
        #expect(eos.sequence(0) == [5, 6, 7, 2])
        #expect(eos.sequence(1) == [2, 8, 9, 2])
        // A tail too short for a sequence is dropped.
        let tail = try TrainingData(documents: [[5, 6, 7, 8, 9, 10]], separator: .bos(1), sequenceLength: 4, seed: 0)
        #expect(tail.sequenceCount == 1 && tail.sequence(0) == [1, 5, 6, 7, 8])
    }

    @Test func filesAreTokenizedWithTheModelsTokenizer() throws {
        let tokenizer = try TokenizerLoader.load(url: BalconyTestSupport.storiesTokenizer)
        #expect(try DocumentSeparator.of(tokenizer) == .bos(1))
        let temp = try TemporaryDirectory()
        let stories = ["Once upon a time, there was a little dog.", "The sun was hot. Lily went to the park and played."]
        let txt = try Self.write(stories[0] + "\n<|endoftext|>\n", "a.txt", in: temp)
        let jsonl = try Self.write("{\"text\": \"\(stories[1])\"}\n", "b.jsonl", in: temp)
        let data = try TrainingData.load(paths: [txt.path, jsonl.path], tokenizer: tokenizer, sequenceLength: 4, seed: 1)
        let expected = [1] + tokenizer.encode(stories[0]) + [1] + tokenizer.encode(stories[1])
        #expect(Array(data.stream.map { Int($0) }) == expected)
        #expect(!tokenizer.encode(stories[0]).contains(1), "encode must not add BOS itself")
    }

    @Test func parallelTokenizationKeepsDocumentsAndOrder() throws {
        let tokenizer = try TokenizerLoader.load(url: BalconyTestSupport.storiesTokenizer)
        let story = "Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog. "
        // 100 kB in 40 documents; the 1 MB timing is measured in release (docs/training-data.md).
        let texts = (0..<40).map { i in String(repeating: story, count: 25) + "The end \(i)." } + [""]
        let documents = TrainingDocuments.tokenize(texts, tokenizer: tokenizer)
        #expect(documents.count == 40, "the empty document is dropped")
        for i in [0, 7, 39] { #expect(documents[i] == tokenizer.encode(texts[i])) }
    }

    // MARK: Order, holdout, resumption

    @Test func sameSeedSameBatchesOtherSeedOtherBatches() throws {
        let docs = Self.documents(60)
        func batches(seed: UInt64) throws -> [[[Int]]] {
            var loader = try TrainingData(documents: docs, separator: .bos(1), sequenceLength: 8, holdoutFraction: 0.1, seed: seed).loader()
            return (0..<12).map { _ in loader.nextBatch(size: 5) }
        }
        #expect(try batches(seed: 7) == batches(seed: 7))
        #expect(try batches(seed: 7) != batches(seed: 8))
        let data = try TrainingData(documents: docs, separator: .bos(1), sequenceLength: 8, seed: 7)
        #expect(data.epochOrder(0) != data.epochOrder(1), "every epoch should have its own order")
        #expect(data.epochOrder(3) == data.epochOrder(3))
    }

    @Test func holdoutIsDisjointAndChosenBySeed() throws {
        let docs = Self.documents(80)
        let data = try TrainingData(documents: docs, separator: .bos(1), sequenceLength: 6, holdoutFraction: 0.2, seed: 4)
        let n = data.sequenceCount
        #expect(data.holdoutSequences.count == Int((0.2 * Double(n)).rounded()))
        #expect(Set(data.holdoutSequences).isDisjoint(with: data.trainingSequences))
        #expect(Set(data.holdoutSequences).union(data.trainingSequences) == Set(0..<n))
        #expect(data.holdout.count == data.holdoutSequences.count)
        #expect(data.holdout.allSatisfy { $0.count == 7 })
        let other = try TrainingData(documents: docs, separator: .bos(1), sequenceLength: 6, holdoutFraction: 0.2, seed: 5)
        #expect(other.holdoutSequences != data.holdoutSequences)
        // Training never visits a held-out sequence, in any epoch.
        for epoch in 0..<4 { #expect(Set(data.epochOrder(epoch)).isDisjoint(with: data.holdoutSequences)) }
    }

    @Test func anEpochVisitsEveryTrainingSequenceOnce() throws {
        let data = try TrainingData(documents: Self.documents(50), separator: .bos(1), sequenceLength: 5, holdoutFraction: 0.1, seed: 2)
        let order = data.epochOrder(0)
        #expect(order.sorted() == data.trainingSequences)
        var loader = try data.loader()
        let epoch = loader.nextBatch(size: data.trainingSequences.count)
        #expect(epoch == order.map(data.sequence))
        #expect(loader.position == DataPosition(epoch: 0, index: order.count))
        _ = loader.nextBatch(size: 1)
        #expect(loader.position == DataPosition(epoch: 1, index: 1))
    }

    @Test func resumingFromASavedPositionGivesTheSameBatches() throws {
        let data = try TrainingData(documents: Self.documents(40), separator: .eos(2), sequenceLength: 7, holdoutFraction: 0.05, seed: 11)
        var straight = try data.loader()
        var run = try data.loader()
        // Stop at several points, including mid-epoch and right at an epoch's end.
        for stop in [1, 3, 7] {
            for _ in 0..<stop { _ = run.nextBatch(size: 3); _ = straight.nextBatch(size: 3) }
            let saved = try JSONDecoder().decode(DataPosition.self, from: JSONEncoder().encode(run.position))
            var resumed = try data.loader(from: saved)
            var reference = straight
            for _ in 0..<10 { #expect(resumed.nextBatch(size: 3) == reference.nextBatch(size: 3)) }
        }
        var atEnd = try data.loader(from: DataPosition(epoch: 2, index: data.trainingSequences.count))
        var next = try data.loader(from: DataPosition(epoch: 3, index: 0))
        #expect(atEnd.nextBatch(size: 2) == next.nextBatch(size: 2))
        expectDataError(["does not fit an epoch"]) { _ = try data.loader(from: DataPosition(epoch: 0, index: 10_000)) }
        expectDataError(["does not fit an epoch"]) { _ = try data.loader(from: DataPosition(epoch: -1, index: 0)) }
    }

    @Test func digestFollowsTheTokens() throws {
        let a = try TrainingData(documents: [[5, 6, 7, 8]], separator: .bos(1), sequenceLength: 2, seed: 1)
        let b = try TrainingData(documents: [[5, 6, 7, 8]], separator: .bos(1), sequenceLength: 3, seed: 9)
        let c = try TrainingData(documents: [[5, 6, 7, 9]], separator: .bos(1), sequenceLength: 2, seed: 1)
        #expect(a.digest == b.digest)
        #expect(a.digest != c.digest)
        #expect(a.digest.count == 64)
    }
}
