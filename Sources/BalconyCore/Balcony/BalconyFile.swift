import Foundation

/// What a balcony file records besides the tensors (its `__metadata__`).
public struct BalconyFileInfo: Sendable, Equatable {
    /// How the balconies were initialized before training.
    public var initialization: BalconyInitialization
    /// `ModelFingerprint` of the base model the balconies were trained on; nil only for the
    /// authors' files, which carry none.
    public var baseFingerprint: String?
    /// The base model's architecture (`LlamaConfig.architecture`).
    public var baseArchitecture: String?
    /// A readable account of the base model for messages: its file name (when known) and shape.
    public var baseDescription: String?
    /// The run's settings; nil for balconies saved before any training.
    public var training: TrainingConfiguration?
    /// Optimizer steps taken.
    public var step: Int
    /// Training tokens seen (inputs, counted once per step of every micro-batch).
    public var tokensSeen: Int

    public init(initialization: BalconyInitialization, baseFingerprint: String? = nil, baseArchitecture: String? = nil,
                baseDescription: String? = nil, training: TrainingConfiguration? = nil, step: Int = 0, tokensSeen: Int = 0) {
        self.initialization = initialization
        self.baseFingerprint = baseFingerprint
        self.baseArchitecture = baseArchitecture
        self.baseDescription = baseDescription
        self.training = training
        self.step = step
        self.tokensSeen = tokensSeen
    }

    /// The identity fields of `base`: fingerprint, architecture and description (named after
    /// `name`, e.g. the model's file name).
    public init(initialization: BalconyInitialization, base: ModelWeights, name: String? = nil,
                training: TrainingConfiguration? = nil, step: Int = 0, tokensSeen: Int = 0) {
        self.init(initialization: initialization, baseFingerprint: ModelFingerprint.compute(base),
                  baseArchitecture: base.config.architecture, baseDescription: BalconyFile.describe(base.config, name: name),
                  training: training, step: step, tokensSeen: tokensSeen)
    }
}

/// Balconies read from a file, in the base model's q/k row order, in the file's exit order.
public struct LoadedBalconies: Sendable {
    /// Which writer produced the file.
    public enum Layout: String, Sendable {
        /// Balcony's `balconies.safetensors`.
        case balcony
        /// A Balcony training state (its optimizer tensors are ignored).
        case trainingState = "training-state"
        /// The authors' PyTorch output: the same tensor names, no Balcony metadata.
        case authors
    }

    public var balconies: [BalconyParameters]
    public var info: BalconyFileInfo
    public var layout: Layout
    /// Things the caller may want to tell the user (e.g. that the fingerprint was not checked).
    public var notes: [String]

    /// Exit depths, in file order.
    public var exits: [Int] { balconies.map(\.exit) }
}

/// Balcony files: every balcony of a model in one safetensors file, under the authors' Hugging
/// Face names (`model.exit_modules.{i}.0.<decoder layer>`, `model.exit_modules.{i}.1.weight`,
/// `i` = position in `exit_layer_indices`), F32, with Hugging Face q/k row order whatever the
/// base model's own order is. See docs/balcony-files.md for the layout and metadata keys.
public enum BalconyFile {
    /// The file name the trainer writes.
    public static let fileName = "balconies.safetensors"
    /// `__metadata__["format"]` of balcony files.
    public static let format = "balcony"
    /// `__metadata__["format_version"]`; readers refuse newer versions.
    public static let formatVersion = 1

    /// Metadata keys.
    public enum Key {
        public static let format = "format"
        public static let formatVersion = "format_version"
        public static let exitLayerIndices = "exit_layer_indices"
        public static let initialization = "init"
        public static let baseFingerprint = "base_fingerprint"
        public static let baseArchitecture = "base_architecture"
        public static let baseDescription = "base_description"
        public static let trainingConfig = "training_config"
        public static let step = "step"
        public static let tokensSeen = "tokens_seen"
    }

    // MARK: Writing

    /// Writes `balconies` (in the base model's row order, shaped for `config`) to `url`
    /// atomically: readers see the old file or the complete new one.
    /// - Throws: `BalconyFileError` for balconies that do not fit `config` or repeat an exit,
    ///   `ModelFileError.writeFailed` for I/O problems.
    public static func write(_ balconies: [BalconyParameters], info: BalconyFileInfo, config: LlamaConfig, to url: URL) throws {
        try validate(balconies, config: config, path: url.path)
        try BalconyTensorLayout.write([(BalconyTensorLayout.balconyPrefix, balconies)], config: config,
                                      metadata: try metadata(exits: balconies.map(\.exit), info: info, format: format), to: url)
    }

    /// The `__metadata__` of a balcony file (also written into training states, so that they can
    /// be read as balcony files).
    static func metadata(exits: [Int], info: BalconyFileInfo, format: String) throws -> [String: String] {
        var m: [String: String] = [
            Key.format: format,
            Key.formatVersion: String(formatVersion),
            Key.exitLayerIndices: exitListJSON(exits),
            Key.initialization: info.initialization.rawValue,
            Key.step: String(info.step),
            Key.tokensSeen: String(info.tokensSeen),
        ]
        m[Key.baseFingerprint] = info.baseFingerprint
        m[Key.baseArchitecture] = info.baseArchitecture
        m[Key.baseDescription] = info.baseDescription
        if let t = info.training { m[Key.trainingConfig] = try t.jsonString() }
        return m
    }

    /// `[4, 8, 12]`, as Python's `json.dumps` writes the list in the authors' config.
    static func exitListJSON(_ exits: [Int]) -> String { "[" + exits.map(String.init).joined(separator: ", ") + "]" }

    /// Checks balconies against the base model's shape before writing.
    static func validate(_ balconies: [BalconyParameters], config: LlamaConfig, path: String) throws {
        guard !balconies.isEmpty else { throw BalconyFileError.invalid(path, "there are no balconies to write") }
        let exits = balconies.map(\.exit)
        guard Set(exits).count == exits.count else {
            throw BalconyFileError.invalid(path, "exits \(exits) list a depth twice; each exit has one balcony")
        }
        for b in balconies {
            guard b.exit >= 1, b.exit < config.layerCount else {
                throw BalconyFileError.exitOutOfRange(path, exit: b.exit, layers: config.layerCount)
            }
            try b.validate(config: config, source: path)
        }
    }

    /// "stories15M.bin: llama, 6 layers, dim 288, ..." — the base model in messages.
    public static func describe(_ c: LlamaConfig, name: String? = nil) -> String {
        let shape = "\(c.architecture), \(c.layerCount) layers, dim \(c.dim), hidden \(c.hiddenDim), "
            + "\(c.headCount) heads, \(c.kvHeadCount) kv heads, vocab \(c.vocabSize)"
        return name.map { "\($0) (\(shape))" } ?? shape
    }

    // MARK: Reading

    /// Reads balconies for the base model `base`, checking everything: the fingerprint, exit
    /// depths, the tensor set and every shape. Convenience for `read(from:config:fingerprint:...)`
    /// that computes the fingerprint.
    public static func read(from url: URL, base: ModelWeights, exits: [Int]? = nil, authorsConfig: URL? = nil) throws -> LoadedBalconies {
        try read(from: url, config: base.config, fingerprint: ModelFingerprint.compute(base), exits: exits, authorsConfig: authorsConfig)
    }

    /// Reads balconies for a base model of shape `config` whose `ModelFingerprint` is `fingerprint`.
    ///
    /// `url` is a balcony file, a Balcony training state, the authors' safetensors file, or a
    /// folder holding one of them (`balconies.safetensors`, else `model.safetensors` or the
    /// shards of `model.safetensors.index.json`). The authors' files have no metadata: their
    /// exit list comes from `exits`, else from `exit_layer_indices` in `authorsConfig`, else from
    /// a `config.json` beside the file; their fingerprint cannot be checked (a note says so), but
    /// the shapes in that config.json and of every tensor are. Base-model tensors in the authors'
    /// files (a whole `NestedLlamaForCausalLM` checkpoint) are ignored.
    /// - Throws: `BalconyFileError` naming the problem and what to do; `ModelFileError` for files
    ///   that are not valid safetensors (truncated, corrupt).
    public static func read(from url: URL, config: LlamaConfig, fingerprint: String?, exits: [Int]? = nil,
                            authorsConfig: URL? = nil) throws -> LoadedBalconies {
        let (files, folder) = try locate(url)
        let path = files.count == 1 ? files[0].path : url.path
        let source = BalconyTensorLayout.Source(files)
        let metadata = files[0].metadata
        switch metadata[Key.format] {
        case format?, TrainingStateFile.format?:
            let layout: LoadedBalconies.Layout = metadata[Key.format] == format ? .balcony : .trainingState
            let (info, fileExits) = try parseMetadata(metadata, path: path)
            if let exits, exits != fileExits {
                throw BalconyFileError.invalid(path, "it holds exits \(fileExits), not the \(exits) asked for; leave out the exit list or pass \(fileExits)")
            }
            try checkBase(info: info, fingerprint: fingerprint, config: config, exits: fileExits, path: path)
            let ignorable: (String) -> Bool = { layout == .trainingState && $0.hasPrefix(TrainingStateFile.optimizerPrefix) }
            try BalconyTensorLayout.check(source, groups: [(BalconyTensorLayout.balconyPrefix, fileExits.count)],
                                          config: config, path: path, ignorable: ignorable)
            let balconies = try BalconyTensorLayout.read(source, prefix: BalconyTensorLayout.balconyPrefix, exits: fileExits, config: config)
            var notes: [String] = []
            if fingerprint == nil { notes.append("the base model's fingerprint was not checked") }
            return LoadedBalconies(balconies: balconies, info: info, layout: layout, notes: notes)
        case let other?  where other.hasPrefix("balcony"):
            throw BalconyFileError.invalid(path, "its format '\(other)' is not one this version reads; use a newer Balcony")
        default:
            return try readAuthors(source, path: path, folder: folder, config: config, exits: exits, authorsConfig: authorsConfig)
        }
    }

    /// The safetensors file(s) at `url` and the folder they are in.
    static func locate(_ url: URL) throws -> ([SafetensorsFile], URL) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ModelFileError.cannotOpen(url.path, "no such file or directory")
        }
        guard isDirectory.boolValue else { return ([try SafetensorsFile(url: url)], url.deletingLastPathComponent()) }
        let fm = FileManager.default
        for name in [fileName, TrainingStateFile.fileName, "model.safetensors"] {
            let candidate = url.appendingPathComponent(name)
            if fm.fileExists(atPath: candidate.path) { return ([try SafetensorsFile(url: candidate)], url) }
        }
        let index = url.appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: index.path) {
            // Only the shards that hold balcony tensors are opened.
            struct Index: Decodable { var weight_map: [String: String] }
            let decoded: Index
            do { decoded = try JSONDecoder().decode(Index.self, from: Data(contentsOf: index)) }
            catch { throw BalconyFileError.invalid(index.path, "its weight_map cannot be read (\(error.localizedDescription))") }
            let shards = Set(decoded.weight_map.filter { $0.key.hasPrefix(BalconyTensorLayout.balconyPrefix) }.values).sorted()
            guard !shards.isEmpty else {
                throw BalconyFileError.invalid(url.path, "no tensor under \(BalconyTensorLayout.balconyPrefix) in its shards; pass a folder with balconies")
            }
            return (try shards.map { try SafetensorsFile(url: url.appendingPathComponent($0)) }, url)
        }
        throw BalconyFileError.invalid(url.path, "the folder has no \(fileName), \(TrainingStateFile.fileName) or model.safetensors; pass the balcony file itself")
    }

    /// Decodes Balcony's metadata, naming the first bad key.
    static func parseMetadata(_ m: [String: String], path: String) throws -> (BalconyFileInfo, [Int]) {
        func bad(_ key: String, _ why: String) -> BalconyFileError {
            .invalid(path, "metadata '\(key)' \(why); the file is damaged or was not written by Balcony")
        }
        guard let v = m[Key.formatVersion], let version = Int(v) else { throw bad(Key.formatVersion, "is missing or not a number") }
        guard version <= formatVersion else {
            throw BalconyFileError.invalid(path, "it has format version \(version), newer than this Balcony reads (\(formatVersion)); use a newer Balcony")
        }
        guard let list = m[Key.exitLayerIndices] else { throw bad(Key.exitLayerIndices, "is missing") }
        let exits = try parseExitList(list, path: path, key: Key.exitLayerIndices)
        guard let i = m[Key.initialization], let initialization = BalconyInitialization(rawValue: i) else {
            throw bad(Key.initialization, "is missing or not one of \(BalconyInitialization.allCases.map(\.rawValue))")
        }
        guard let s = m[Key.step], let step = Int(s), step >= 0 else { throw bad(Key.step, "is missing or not a count") }
        guard let t = m[Key.tokensSeen], let tokens = Int(t), tokens >= 0 else { throw bad(Key.tokensSeen, "is missing or not a count") }
        var training: TrainingConfiguration?
        if let json = m[Key.trainingConfig] {
            do { training = try TrainingConfiguration.decode(json: json) }
            catch { throw bad(Key.trainingConfig, "cannot be decoded (\(error.localizedDescription))") }
        }
        let info = BalconyFileInfo(initialization: initialization, baseFingerprint: m[Key.baseFingerprint],
                                   baseArchitecture: m[Key.baseArchitecture], baseDescription: m[Key.baseDescription],
                                   training: training, step: step, tokensSeen: tokens)
        return (info, exits)
    }

    /// A JSON list of exit depths (`[4, 8, 12]`).
    static func parseExitList(_ text: String, path: String, key: String) throws -> [Int] {
        guard let exits = try? JSONDecoder().decode([Int].self, from: Data(text.utf8)) else {
            throw BalconyFileError.invalid(path, "'\(key)' is \(text.prefix(60)), not a JSON list of layer numbers")
        }
        guard !exits.isEmpty else { throw BalconyFileError.invalid(path, "'\(key)' lists no exits") }
        guard Set(exits).count == exits.count else { throw BalconyFileError.invalid(path, "'\(key)' \(exits) lists a depth twice") }
        return exits
    }

    /// Fingerprint and exit-range checks of a Balcony-written file.
    static func checkBase(info: BalconyFileInfo, fingerprint: String?, config: LlamaConfig, exits: [Int], path: String) throws {
        if let fingerprint, let saved = info.baseFingerprint, saved != fingerprint {
            throw BalconyFileError.baseModelMismatch(path, trainedFor: info.baseDescription ?? info.baseArchitecture ?? "another model",
                                                     fingerprint: saved, given: fingerprint)
        }
        for e in exits where e < 1 || e >= config.layerCount {
            throw BalconyFileError.exitOutOfRange(path, exit: e, layers: config.layerCount)
        }
    }

    // MARK: The authors' files

    /// The fields of the authors' config.json that matter here (the rest is a LlamaConfig).
    struct AuthorsConfig: Decodable {
        var exitLayerIndices: [Int]?
        var exitDecoderLayer: Bool?
        var tieExitLmHead: Bool?
        var hiddenSize: Int?
        var intermediateSize: Int?
        var numHiddenLayers: Int?
        var numAttentionHeads: Int?
        var numKeyValueHeads: Int?
        var vocabSize: Int?

        enum CodingKeys: String, CodingKey {
            case exitLayerIndices = "exit_layer_indices", exitDecoderLayer = "exit_decoder_layer"
            case tieExitLmHead = "tie_exit_lm_head", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
            case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
            case numKeyValueHeads = "num_key_value_heads", vocabSize = "vocab_size"
        }
    }

    /// `exit_layer_indices` of the authors' config.json (e.g. `[15, 18, 21]`).
    /// - Throws: `BalconyFileError.invalid` when the file has no such list or describes exits
    ///   Balcony cannot run (no decoder layer, or separate exit heads).
    public static func exitLayerIndices(authorsConfig url: URL) throws -> [Int] {
        let c = try loadAuthorsConfig(url)
        guard let exits = c.exitLayerIndices else {
            throw BalconyFileError.invalid(url.path, "it has no exit_layer_indices; pass the config.json of the balcony training run, or the exit list")
        }
        return exits
    }

    static func loadAuthorsConfig(_ url: URL) throws -> AuthorsConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelFileError.cannotOpen(url.path, error.localizedDescription)
        }
        let c: AuthorsConfig
        do { c = try JSONDecoder().decode(AuthorsConfig.self, from: data) } catch let error as DecodingError {
            throw BalconyFileError.invalid(url.path, "config.json cannot be read: \(SafetensorsFile.describe(error))")
        }
        if c.exitDecoderLayer == false {
            throw BalconyFileError.invalid(url.path, "exit_decoder_layer is false: its exits have no decoder layer, and Balcony's balconies need one (train with exit_decoder_layer: true)")
        }
        if c.tieExitLmHead == false {
            throw BalconyFileError.invalid(url.path, "tie_exit_lm_head is false: its exits have their own output heads, which Balcony does not support (train with tie_exit_lm_head: true)")
        }
        return c
    }

    /// Base-model tensors of a whole `NestedLlamaForCausalLM` checkpoint, and RoPE buffers older
    /// transformers saved, which a balcony reader skips.
    static func isAuthorsIgnorable(_ name: String) -> Bool {
        if name.hasSuffix("rotary_emb.inv_freq") { return true }
        return name.hasPrefix("model.layers.") || name == "model.embed_tokens.weight" || name == "model.norm.weight"
            || name == "lm_head.weight"
    }

    static func readAuthors(_ source: BalconyTensorLayout.Source, path: String, folder: URL, config: LlamaConfig,
                            exits given: [Int]?, authorsConfig: URL?) throws -> LoadedBalconies {
        guard source.names.contains(where: { $0.hasPrefix(BalconyTensorLayout.balconyPrefix) }) else {
            throw BalconyFileError.invalid(path, "it holds no balcony tensors (\(BalconyTensorLayout.balconyPrefix)*), so it is probably a base model; pass a balcony file")
        }
        var notes = ["no Balcony metadata (the authors' layout): the base model's fingerprint was not checked"]
        var exits = given
        let configURL = authorsConfig ?? folder.appendingPathComponent("config.json")
        if authorsConfig != nil || FileManager.default.fileExists(atPath: configURL.path) {
            let c = try loadAuthorsConfig(configURL)
            // The authors' config.json is the base model's config plus the exit fields, so its
            // shape can stand in for the fingerprint check.
            let pairs: [(String, Int?, Int)] = [
                ("hidden_size", c.hiddenSize, config.dim), ("intermediate_size", c.intermediateSize, config.hiddenDim),
                ("num_hidden_layers", c.numHiddenLayers, config.layerCount), ("num_attention_heads", c.numAttentionHeads, config.headCount),
                ("num_key_value_heads", c.numKeyValueHeads, config.kvHeadCount), ("vocab_size", c.vocabSize, config.vocabSize),
            ]
            let differing = pairs.compactMap { name, saved, have in saved.map { $0 == have ? nil : "\(name) \($0) (the model given has \(have))" } ?? nil }
            if !differing.isEmpty {
                throw BalconyFileError.invalid(path, "its config.json describes another base model: " + differing.joined(separator: ", ") + "; pass the model it was trained on")
            }
            if exits == nil {
                exits = c.exitLayerIndices
                if exits != nil { notes.append("exits \(exitListJSON(c.exitLayerIndices!)) from \(configURL.path)") }
            }
        }
        guard let exits else { throw BalconyFileError.exitsUnknown(path) }
        guard !exits.isEmpty, Set(exits).count == exits.count else {
            throw BalconyFileError.invalid(path, "the exit list \(exits) is empty or lists a depth twice")
        }
        try checkBase(info: BalconyFileInfo(initialization: .copy), fingerprint: nil, config: config, exits: exits, path: path)
        try BalconyTensorLayout.check(source, groups: [(BalconyTensorLayout.balconyPrefix, exits.count)], config: config,
                                      path: path, ignorable: isAuthorsIgnorable)
        let balconies = try BalconyTensorLayout.read(source, prefix: BalconyTensorLayout.balconyPrefix, exits: exits, config: config)
        // The authors' files do not say how the balconies started; copy is their default.
        let info = BalconyFileInfo(initialization: .copy, baseArchitecture: config.architecture)
        return LoadedBalconies(balconies: balconies, info: info, layout: .authors, notes: notes)
    }
}
