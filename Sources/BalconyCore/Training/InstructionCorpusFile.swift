import Foundation

/// Generated corpora on disk, so that a second run with the same recipe reuses the first one's
/// text instead of generating it again: JSON Lines, a header `{"balcony_corpus": 1, "recipe": {...}}`
/// then one `{"ids": [...]}` per document. Written atomically; read back with every id bounded by
/// the vocabulary and the recipe checked against the run's (another model's corpus is an error,
/// not a silent reuse).
public enum InstructionCorpusFile {
    public static let formatVersion = 1

    /// `BALCONY_CACHE`, else `XDG_CACHE_HOME/balcony`, else `~/.cache/balcony`; corpora go in `corpora/`.
    public static func defaultURL(for recipe: InstructionCorpusRecipe,
                                  environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let root: URL
        if let dir = environment["BALCONY_CACHE"], !dir.isEmpty {
            root = URL(fileURLWithPath: dir, isDirectory: true)
        } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            root = URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("balcony", isDirectory: true)
        } else {
            root = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/balcony", isDirectory: true)
        }
        return root.appendingPathComponent("corpora", isDirectory: true).appendingPathComponent("corpus-\(recipe.cacheKey).jsonl")
    }

    struct Header: Codable {
        var balcony_corpus: Int
        var recipe: InstructionCorpusRecipe
    }

    struct Document: Codable {
        var ids: [Int]
    }

    public static func write(_ documents: [[Int]], recipe: InstructionCorpusRecipe, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var data = try encoder.encode(Header(balcony_corpus: formatVersion, recipe: recipe))
        data.append(0x0A)
        for doc in documents {
            data.append(try encoder.encode(Document(ids: doc)))
            data.append(0x0A)
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFileWriter.write(data, to: url)
    }

    /// The documents of the corpus at `url`, which must have been made with `recipe` for a model of
    /// `vocabSize` tokens.
    /// - Throws: `InstructionCorpusError` naming what differs (the model first) or what is malformed.
    public static func read(from url: URL, expecting recipe: InstructionCorpusRecipe, vocabSize: Int) throws -> [[Int]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).makeIterator()
        let decoder = JSONDecoder()
        guard let first = lines.next(), let header = try? decoder.decode(Header.self, from: Data(first.utf8)) else {
            throw InstructionCorpusError.malformed(file: url.path, line: 1, why: "no corpus header")
        }
        guard header.balcony_corpus == formatVersion else {
            throw InstructionCorpusError.malformed(file: url.path, line: 1, why: "format version \(header.balcony_corpus), this Balcony reads \(formatVersion)")
        }
        let r = header.recipe
        if r.modelFingerprint != recipe.modelFingerprint {
            throw InstructionCorpusError.otherModel(file: url.path, corpusModel: r.modelFingerprint, model: recipe.modelFingerprint)
        }
        for (field, same) in [("instruction list", r.instructionsSHA256 == recipe.instructionsSHA256), ("token count", r.tokens == recipe.tokens),
                              ("seed", r.seed == recipe.seed), ("answer length", r.maxAnswerTokens == recipe.maxAnswerTokens),
                              ("temperature or top-p", r.temperature == recipe.temperature && r.topP == recipe.topP),
                              ("chat template", r.template == recipe.template)] where !same {
            throw InstructionCorpusError.otherRecipe(file: url.path, field: field)
        }
        var documents: [[Int]] = []
        var total = 0, number = 1
        while let line = lines.next() {
            number += 1
            guard let doc = try? decoder.decode(Document.self, from: Data(line.utf8)) else {
                throw InstructionCorpusError.malformed(file: url.path, line: number, why: "not a {\"ids\": [...]} line")
            }
            guard doc.ids.allSatisfy({ $0 >= 0 && $0 < vocabSize }) else {
                throw InstructionCorpusError.malformed(file: url.path, line: number, why: "a token id outside the vocabulary of \(vocabSize)")
            }
            total += doc.ids.count
            guard total <= recipe.tokens else {
                throw InstructionCorpusError.malformed(file: url.path, line: number, why: "more tokens than the \(recipe.tokens) its header says")
            }
            documents.append(doc.ids)
        }
        guard total == recipe.tokens else {
            throw InstructionCorpusError.malformed(file: url.path, line: number, why: "\(total) tokens where its header says \(recipe.tokens): it is truncated")
        }
        return documents
    }
}
