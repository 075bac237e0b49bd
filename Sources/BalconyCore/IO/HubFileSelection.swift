/// Which files of a repository a download takes.
///
/// First the **scope**: with no subfolder, the whole repository; with a subfolder, the files
/// under it; a subfolder that names a file selects exactly that file.
///
/// Then, inside the scope:
/// - with **include patterns** (`HubGlob`, fnmatch-style), the files whose path relative to the
///   scope matches any of them;
/// - without, the **model files**: the files directly in the scope folder (not in folders below
///   it, which hold things like `original/` PyTorch checkpoints or ONNX exports) named `*.json`,
///   `*.safetensors` or `tokenizer.model`; and `*.bin` only when there is no `*.safetensors`
///   (old PyTorch repositories, llama2.c checkpoints and tokenizers). `*.gguf` files are never
///   taken by default, since GGUF repositories hold many quantizations of one model: name the one
///   you want, e.g. `--include '*Q8_0.gguf'` or `hf:OWNER/NAME/model-Q8_0.gguf`.
public struct HubFileSelection: Sendable, Equatable {
    /// The patterns of the default rule; `*.bin` is added when the scope has no safetensors.
    public static let modelFilePatterns = ["*.json", "*.safetensors", "tokenizer.model"]

    /// A subfolder or a file inside the repository, or nil for the whole repository.
    public var scope: String?
    /// Patterns matched against paths relative to `scope`; empty means the model-file rule.
    public var include: [String]

    public init(scope: String? = nil, include: [String] = []) {
        let trimmed = scope?.split(separator: "/").joined(separator: "/")
        self.scope = trimmed?.isEmpty == true ? nil : trimmed
        self.include = include
    }

    /// The selected paths among `paths` (repository paths such as `sub/model.bin`), in the order given.
    public func select(_ paths: [String]) -> [String] {
        if let scope, paths.contains(scope) { return [scope] }
        let prefix = scope.map { $0 + "/" } ?? ""
        let scoped = paths.filter { $0.hasPrefix(prefix) }
        func relative(_ path: String) -> String { String(path.dropFirst(prefix.count)) }

        if !include.isEmpty {
            let globs = include.map(HubGlob.init)
            return scoped.filter { path in globs.contains { $0.matches(relative(path)) } }
        }
        let direct = scoped.filter { !relative($0).contains("/") }
        var globs = Self.modelFilePatterns.map(HubGlob.init)
        if !direct.contains(where: { $0.hasSuffix(".safetensors") }) {
            globs.append(HubGlob("*.bin"))
        }
        return direct.filter { path in globs.contains { $0.matches(relative(path)) } }
    }
}
