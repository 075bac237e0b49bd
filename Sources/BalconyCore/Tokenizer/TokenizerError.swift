import Foundation

/// Errors raised while loading a tokenizer. Each message names the file, what is wrong with it and
/// what to do about it. Malformed input always ends up here, never in a trap.
public enum TokenizerError: LocalizedError, Equatable {
    /// The path is none of the formats Balcony reads.
    case unknownFormat(String)
    /// A file the format needs is not there.
    case missingFile(String)
    /// The file is shorter than its own structure says.
    case truncated(String, needed: Int, have: Int)
    /// The file is readable but inconsistent (bad lengths, ids out of range, wrong types).
    case corrupt(String, String)
    /// The file parses, but it describes a tokenizer algorithm Balcony does not implement.
    case unsupportedModel(String, found: String, supported: [String])
    /// A Hugging Face normalizer or pre-tokenizer (or a SentencePiece normalization rule) that
    /// Balcony does not implement.
    case unsupportedComponent(String, component: String, found: String, supported: [String])
    /// A required entry (a GGUF metadata key, a tokenizer.json field) is absent.
    case missingField(String, String)

    public var errorDescription: String? {
        switch self {
        case let .unknownFormat(path):
            return "cannot tell the tokenizer format of \(path): expected a llama2.c tokenizer .bin, a SentencePiece "
                + ".model, a tokenizer.json, a Hugging Face model folder holding tokenizer.json, or a .gguf file"
        case let .missingFile(path):
            return "tokenizer file \(path) does not exist; check the path, or pass the model folder that holds it"
        case let .truncated(path, needed, have):
            return "tokenizer file \(path) is truncated: needs at least \(needed) bytes but has \(have); "
                + "the file is incomplete, download or export it again"
        case let .corrupt(path, why):
            return "tokenizer file \(path) is corrupt: \(why); download or export it again"
        case let .unsupportedModel(path, found, supported):
            return "\(path) uses tokenizer model '\(found)', which Balcony does not support; "
                + "supported: \(supported.joined(separator: ", "))"
        case let .unsupportedComponent(path, component, found, supported):
            return "\(path) uses \(component) '\(found)', which Balcony does not implement; "
                + "supported: \(supported.joined(separator: ", "))"
        case let .missingField(path, field):
            return "\(path) lacks '\(field)', which a tokenizer needs; the file is incomplete or not a tokenizer"
        }
    }
}
