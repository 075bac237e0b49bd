import Dispatch
import Foundation

/// Errors of reading and preparing training data. Each message names the file (and line) and
/// says what to do.
public enum TrainingDataError: LocalizedError, Equatable {
    case noInputs
    case cannotRead(String, String)
    case noFilesInFolder(String)
    case notUTF8(String)
    case malformedLine(String, line: Int, String)
    case noText(files: Int)
    case tooFewTokens(tokens: Int, sequenceLength: Int)
    case noTrainingSequences(sequences: Int, holdout: Int)
    case noSeparator
    case invalidSetting(String)
    case invalidPosition(DataPosition, epochLength: Int)

    public var errorDescription: String? {
        switch self {
        case .noInputs:
            return "no training data given; pass text files, JSON Lines files or folders of them, or --self-generate N"
        case let .cannotRead(path, why):
            return "cannot read training data \(path): \(why)"
        case let .noFilesInFolder(path):
            return "the folder \(path) holds no .txt, .jsonl or .md files; pass files or a folder that has some"
        case let .notUTF8(path):
            return "\(path) is not UTF-8 text; convert it to UTF-8 or leave it out"
        case let .malformedLine(path, line, why):
            return "\(path) line \(line): \(why); each line must be a JSON object with a \"text\" string"
        case let .noText(files):
            return "the training data (\(files) file(s)) hold no text to train on; pass files that contain text"
        case let .tooFewTokens(tokens, sequenceLength):
            return "the training data give \(tokens) tokens, fewer than one sequence needs (\(sequenceLength + 1) for sequence length \(sequenceLength)); add data or lower the sequence length"
        case let .noTrainingSequences(sequences, holdout):
            return "holding out \(holdout) of \(sequences) sequences leaves none to train on; lower the holdout fraction or add data"
        case .noSeparator:
            return "the tokenizer has neither a BOS nor an EOS id to separate documents; use the model's own tokenizer"
        case let .invalidSetting(why):
            return "invalid data setting: \(why)"
        case let .invalidPosition(p, length):
            return "data position epoch \(p.epoch), index \(p.index) does not fit an epoch of \(length) sequences; the training state belongs to other data"
        }
    }
}

/// Turning files into documents and documents into token ids (docs/training-data.md).
///
/// - A folder is searched recursively for `.txt`, `.md` and `.jsonl` files (hidden files and
///   folders skipped), in path order. A file named directly is read whatever its extension:
///   `.jsonl` as JSON Lines, anything else as plain text.
/// - JSON Lines: every non-blank line is a JSON object whose `text` string is one document
///   (taken verbatim; empty texts are skipped).
/// - Plain text (`.txt`, `.md`, …): the whole file is one document, except that it is split at
///   `<|endoftext|>` markers when it has them (the TinyStories and GPT-2 convention). Each piece
///   is trimmed of surrounding whitespace and newlines; empty pieces are skipped.
public enum TrainingDocuments {
    /// The marker that separates documents inside a plain text file.
    public static let documentMarker = "<|endoftext|>"
    /// Extensions picked up when searching folders.
    public static let folderExtensions: Set<String> = ["txt", "md", "jsonl"]

    /// The files `paths` name, folders expanded, without duplicates, in the order given (each
    /// folder's files sorted by path).
    /// - Throws: `TrainingDataError` for missing paths, empty folders, or no paths at all.
    public static func files(_ paths: [String]) throws -> [URL] {
        guard !paths.isEmpty else { throw TrainingDataError.noInputs }
        let fm = FileManager.default
        var out: [URL] = []
        var seen = Set<String>()
        func add(_ url: URL) {
            let key = url.standardizedFileURL.path
            if seen.insert(key).inserted { out.append(url) }
        }
        for path in paths {
            let url = URL(fileURLWithPath: path)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw TrainingDataError.cannotRead(path, "no such file or folder")
            }
            guard isDirectory.boolValue else { add(url); continue }
            guard let walker = fm.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey],
                                             options: [.skipsHiddenFiles]) else {
                throw TrainingDataError.cannotRead(path, "the folder cannot be listed")
            }
            var found: [URL] = []
            for case let file as URL in walker where folderExtensions.contains(file.pathExtension.lowercased()) {
                if (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { found.append(file) }
            }
            guard !found.isEmpty else { throw TrainingDataError.noFilesInFolder(path) }
            for file in found.sorted(by: { $0.path < $1.path }) { add(file) }
        }
        return out
    }

    /// The longest document, in UTF-8 bytes, that is tokenized. The tokenizers address a text's
    /// bytes with `Int32` offsets after normalization, which can triple its size (SentencePiece
    /// writes each space as the 3-byte "▁"), so 512 MiB stays clear of 2^31.
    public static let maxDocumentBytes = 512 << 20

    /// The documents of one file.
    /// - Throws: `TrainingDataError` for unreadable or non-UTF-8 files, malformed JSON lines, and
    ///   documents longer than `maxDocumentBytes`.
    public static func documents(in url: URL, maxDocumentBytes: Int = maxDocumentBytes) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TrainingDataError.cannotRead(url.path, error.localizedDescription)
        }
        guard let text = String(validating: data, as: UTF8.self) else { throw TrainingDataError.notUTF8(url.path) }
        let documents = url.pathExtension.lowercased() == "jsonl" ? try jsonLinesDocuments(text, path: url.path) : plainTextDocuments(text)
        if let (i, long) = documents.enumerated().first(where: { $0.element.utf8.count > maxDocumentBytes }) {
            throw TrainingDataError.cannotRead(url.path, "document \(i + 1) is \(long.utf8.count) bytes, more than the \(maxDocumentBytes) Balcony tokenizes at once; split it with \(documentMarker) markers or into JSON Lines")
        }
        return documents
    }

    /// Pieces of a plain text between `<|endoftext|>` markers, trimmed, empty ones dropped.
    public static func plainTextDocuments(_ text: String) -> [String] {
        text.components(separatedBy: documentMarker)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
    }

    /// The `text` of every non-blank line.
    public static func jsonLinesDocuments(_ text: String, path: String) throws -> [String] {
        var out: [String] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) } catch {
                throw TrainingDataError.malformedLine(path, line: lineNumber, "not valid JSON")
            }
            guard let dictionary = object as? [String: Any] else {
                throw TrainingDataError.malformedLine(path, line: lineNumber, "a JSON value that is not an object")
            }
            guard let field = dictionary["text"] else {
                throw TrainingDataError.malformedLine(path, line: lineNumber, "no \"text\" field")
            }
            guard let string = field as? String else {
                throw TrainingDataError.malformedLine(path, line: lineNumber, "\"text\" is not a string")
            }
            if !string.isEmpty { out.append(string) }
        }
        return out
    }

    /// Reads every file of `paths` and tokenizes its documents with `tokenizer` (`encode`, no BOS
    /// or EOS), documents in parallel. Documents that give no tokens are dropped.
    /// - Returns: token documents in file order, and the number of files read.
    public static func tokenize(paths: [String], tokenizer: any Tokenizer) throws -> (documents: [[Int]], files: Int) {
        let files = try files(paths)
        var texts: [String] = []
        for file in files { texts += try documents(in: file) }
        return (tokenize(texts, tokenizer: tokenizer), files.count)
    }

    /// Tokenizes `texts` in parallel (order kept), dropping documents without tokens.
    public static func tokenize(_ texts: [String], tokenizer: any Tokenizer) -> [[Int]] {
        var results = [[Int]](repeating: [], count: texts.count)
        results.withUnsafeMutableBufferPointer { buffer in
            // Each iteration writes its own slot, and concurrentPerform returns only when all are
            // done, so sharing the buffer across threads is safe.
            let out = UncheckedSendable(buffer)
            DispatchQueue.concurrentPerform(iterations: texts.count) { i in
                out.value[i] = tokenizer.encode(texts[i])
            }
        }
        return results.filter { !$0.isEmpty }
    }
}
