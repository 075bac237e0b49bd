import Foundation

/// Errors raised while reading or writing model, tokenizer and checkpoint files.
/// Each message names the file and the problem, and says what to do where that is not obvious.
public enum ModelFileError: LocalizedError, Equatable {
    case cannotOpen(String, String)
    case truncated(String, needed: Int, have: Int)
    case badMagic(String, expected: String)
    case unsupportedVersion(String, Int)
    case corrupt(String, String)
    case unknownTensorType(String, String)
    case unsupportedArchitecture(String, supported: [String])
    case missingTensor(String, String)
    case shapeMismatch(String, tensor: String, expected: [Int], found: [Int])
    case unknownFormat(String)
    case missingTokenizer(String)
    case writeFailed(String, String)
    /// The file is well formed but uses a feature Balcony does not implement (e.g. YaRN RoPE).
    case unsupportedFeature(String, String)
    /// The tensors present do not match the configuration. Every problem is listed: names the
    /// configuration needs but the files lack, names it does not know, and tensors whose shape
    /// differs (each entry "name: found [..], expected [..]").
    case tensorSetMismatch(String, missing: [String], unexpected: [String], wrongShape: [String])

    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(path, why):
            return "cannot open \(path): \(why)"
        case let .truncated(path, needed, have):
            return "\(path) is truncated: needs at least \(needed) bytes but has \(have); the file is incomplete, download or export it again"
        case let .badMagic(path, expected):
            return "\(path) is not a \(expected) file (wrong magic number)"
        case let .unsupportedVersion(path, v):
            return "\(path) has unsupported format version \(v)"
        case let .corrupt(path, why):
            return "\(path) is corrupt: \(why)"
        case let .unknownTensorType(path, type):
            return "\(path) holds a tensor of unsupported type \(type); supported: \(WeightType.allCases.map(\.rawValue).joined(separator: ", ")); requantize the file to one of them (llama.cpp's llama-quantize)"
        case let .unsupportedArchitecture(arch, supported):
            return "unsupported architecture '\(arch)'; supported: \(supported.joined(separator: ", "))"
        case let .missingTensor(path, name):
            return "\(path) lacks tensor '\(name)'"
        case let .shapeMismatch(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)' has shape \(found) but the configuration needs \(expected)"
        case let .unknownFormat(path):
            return "cannot tell the format of \(path): expected a llama2.c .bin, a .gguf file, a Hugging Face model folder or hf:OWNER/NAME"
        case let .missingTokenizer(path):
            return "no tokenizer found for \(path); pass --tokenizer PATH (a tokenizer.bin, tokenizer.json, tokenizer.model or .gguf)"
        case let .writeFailed(path, why):
            return "cannot write \(path): \(why)"
        case let .unsupportedFeature(path, what):
            return "\(path) uses \(what), which Balcony does not support"
        case let .tensorSetMismatch(path, missing, unexpected, wrongShape):
            // Long lists (a wrong layer count) are cut so the message stays readable.
            func list(_ names: [String]) -> String {
                let shown = names.prefix(8).joined(separator: ", ")
                return names.count > 8 ? shown + " and \(names.count - 8) more" : shown
            }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) tensor(s): \(list(missing))") }
            if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected tensor(s): \(list(unexpected))") }
            if !wrongShape.isEmpty { parts.append("\(wrongShape.count) tensor(s) with the wrong shape: \(list(wrongShape))") }
            return "\(path) does not match its configuration: " + parts.joined(separator: "; ")
        }
    }
}
