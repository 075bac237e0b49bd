import Foundation

/// Errors of reading and writing balcony files and training states. Each message is one line:
/// the file, what is wrong, and what to do.
public enum BalconyFileError: LocalizedError, Equatable {
    /// The file records another base model's fingerprint.
    case baseModelMismatch(String, trainedFor: String, fingerprint: String, given: String)
    /// The file is readable but not a balcony file Balcony can use.
    case invalid(String, String)
    /// An exit depth the base model cannot have.
    case exitOutOfRange(String, exit: Int, layers: Int)
    /// The authors' layout without an exit list.
    case exitsUnknown(String)
    /// The tensors do not match the exits and the base model's shapes.
    case tensorSetMismatch(String, missing: [String], unexpected: [String], wrongShape: [String])
    /// A training state that cannot continue the current command exactly.
    case cannotResume(String, [String])

    public var errorDescription: String? {
        switch self {
        case let .baseModelMismatch(path, trainedFor, fingerprint, given):
            return "\(path): this balcony file was trained for base model \(trainedFor) (fingerprint \(ModelFingerprint.short(fingerprint))), "
                + "but the model given has fingerprint \(ModelFingerprint.short(given)); pass the model it was trained on"
        case let .invalid(path, why):
            return "\(path) is not a usable balcony file: \(why)"
        case let .exitOutOfRange(path, exit, layers):
            return "\(path) has a balcony at exit \(exit), outside 1...\(layers - 1) for this \(layers)-layer base model; pass the model it was trained on"
        case let .exitsUnknown(path):
            return "\(path) has no Balcony metadata, so its exit depths are unknown; pass the training config.json that lists exit_layer_indices, or the exit list itself"
        case let .tensorSetMismatch(path, missing, unexpected, wrongShape):
            // Shapes contain commas, so entries are separated by semicolons.
            func list(_ names: [String]) -> String {
                let shown = names.prefix(6).joined(separator: "; ")
                return names.count > 6 ? shown + " and \(names.count - 6) more" : shown
            }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) tensor(s): \(list(missing))") }
            if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected tensor(s): \(list(unexpected))") }
            if !wrongShape.isEmpty { parts.append("\(wrongShape.count) tensor(s) with the wrong shape: \(list(wrongShape))") }
            return "\(path) does not fit this base model and its exits: " + parts.joined(separator: " — ")
                + "; pass the base model it was trained on (and its exit list), or train the balconies again"
        case let .cannotResume(path, differences):
            return "cannot resume from \(path): " + differences.joined(separator: "; ")
                + "; run with the saved settings, or start a new run without --resume"
        }
    }
}
