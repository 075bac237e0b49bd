import Foundation

/// Everything besides tensors that a resumed run needs to continue bit for bit: stored as JSON in
/// a training state file's `training_state` metadata.
public struct TrainingState: Codable, Sendable, Equatable {
    /// The run's settings; a resumed command must agree with them (`TrainingStateFile.read`).
    public var configuration: TrainingConfiguration
    /// Optimizer steps taken (also AdamW's bias-correction count).
    public var step: Int
    /// Training tokens seen so far.
    public var tokensSeen: Int
    /// Where the data loader continues.
    public var dataPosition: DataPosition
    /// The trainer's random generator (`Xoshiro256StarStar.stateWords`); empty when it has none.
    public var rngState: [UInt64]
    /// `ModelFingerprint` of the base model.
    public var baseFingerprint: String
    /// `TrainingData.digest` of the token stream trained on.
    public var dataDigest: String
    /// Free-form values the trainer wants back (running averages for logs, best holdout loss).
    /// Not compared on resume.
    public var extra: [String: Double]

    public init(configuration: TrainingConfiguration, step: Int, tokensSeen: Int, dataPosition: DataPosition,
                rngState: [UInt64] = [], baseFingerprint: String, dataDigest: String, extra: [String: Double] = [:]) {
        self.configuration = configuration
        self.step = step
        self.tokensSeen = tokensSeen
        self.dataPosition = dataPosition
        self.rngState = rngState
        self.baseFingerprint = baseFingerprint
        self.dataDigest = dataDigest
        self.extra = extra
    }

    enum CodingKeys: String, CodingKey {
        case configuration = "training_config", step, tokensSeen = "tokens_seen", dataPosition = "data_position"
        case rngState = "rng_state", baseFingerprint = "base_fingerprint", dataDigest = "data_digest", extra
    }
}

/// Optimizer state per balcony, in the same shapes and row order as the balconies.
public struct OptimizerMoments: Sendable, Equatable {
    /// AdamW's first moments (`exp_avg`), or SGD's momentum buffers (`momentum_buffer`).
    public var first: [BalconyParameters]
    /// AdamW's second moments (`exp_avg_sq`); empty for SGD.
    public var second: [BalconyParameters]

    public init(first: [BalconyParameters], second: [BalconyParameters]) {
        self.first = first
        self.second = second
    }

    /// Zero moments for `balconies` as `optimizer` keeps them (none for SGD without momentum).
    public static func zeros(for balconies: [BalconyParameters], optimizer: OptimizerKind, momentum: Double = 0) -> OptimizerMoments {
        switch optimizer {
        case .adamw: return OptimizerMoments(first: balconies.map { $0.zeros() }, second: balconies.map { $0.zeros() })
        case .sgd: return OptimizerMoments(first: momentum > 0 ? balconies.map { $0.zeros() } : [], second: [])
        }
    }
}

/// A complete training checkpoint: state, balconies (base model's row order) and optimizer moments.
public struct TrainingCheckpoint: Sendable, Equatable {
    public var state: TrainingState
    public var balconies: [BalconyParameters]
    public var moments: OptimizerMoments
    /// Balcony-file metadata (initialization, base description); written so that a training state
    /// also reads as a balcony file.
    public var info: BalconyFileInfo

    public init(state: TrainingState, balconies: [BalconyParameters], moments: OptimizerMoments, info: BalconyFileInfo) {
        self.state = state
        self.balconies = balconies
        self.moments = moments
        self.info = info
    }
}

/// Training state files (`--resume`): one safetensors file holding the balconies under the same
/// names as a balcony file, the optimizer moments under `optimizer.exp_avg.{i}.<name>` and
/// `optimizer.exp_avg_sq.{i}.<name>` (AdamW) or `optimizer.momentum_buffer.{i}.<name>` (SGD with
/// momentum), all F32 in Hugging Face q/k row order, and a `TrainingState` as JSON in the
/// `training_state` metadata. Written atomically: the previous file stays in place, complete,
/// until the new one has been written and flushed, then the new one replaces it by a rename.
public enum TrainingStateFile {
    /// The file name the trainer writes.
    public static let fileName = "training-state.safetensors"
    /// The name `balcony train` used before: read by `--resume` for runs it started.
    public static let legacyFileName = "checkpoint.safetensors"
    /// `__metadata__["format"]` of training states.
    public static let format = "balcony-training-state"
    /// The metadata key of the `TrainingState` JSON.
    public static let stateKey = "training_state"
    static let optimizerPrefix = "optimizer."
    static let firstPrefixAdam = "optimizer.exp_avg."
    static let secondPrefixAdam = "optimizer.exp_avg_sq."
    static let firstPrefixSGD = "optimizer.momentum_buffer."

    /// Tensor groups (prefix, sets) of a checkpoint, in a fixed order.
    static func groups(_ c: TrainingCheckpoint) -> [(prefix: String, sets: [BalconyParameters])] {
        var g: [(prefix: String, sets: [BalconyParameters])] = [(BalconyTensorLayout.balconyPrefix, c.balconies)]
        switch c.state.configuration.optimizer {
        case .adamw:
            g.append((firstPrefixAdam, c.moments.first))
            g.append((secondPrefixAdam, c.moments.second))
        case .sgd:
            if !c.moments.first.isEmpty { g.append((firstPrefixSGD, c.moments.first)) }
        }
        return g
    }

    /// Writes `checkpoint` to `url` atomically (temporary file + rename in the same folder).
    /// - Throws: `BalconyFileError` for inconsistent contents, `ModelFileError.writeFailed` for I/O.
    public static func write(_ checkpoint: TrainingCheckpoint, config: LlamaConfig, to url: URL) throws {
        let path = url.path
        let c = checkpoint
        try BalconyFile.validate(c.balconies, config: config, path: path)
        let exits = c.balconies.map(\.exit)
        guard exits == c.state.configuration.exits else {
            throw BalconyFileError.invalid(path, "the balconies' exits \(exits) differ from the configuration's \(c.state.configuration.exits)")
        }
        let n = c.balconies.count
        let (firstCount, secondCount): (Int, Int) = switch c.state.configuration.optimizer {
        case .adamw: (n, n)
        case .sgd: (c.state.configuration.momentum > 0 ? n : 0, 0)
        }
        guard c.moments.first.count == firstCount, c.moments.second.count == secondCount else {
            throw BalconyFileError.invalid(path, "\(c.moments.first.count) first and \(c.moments.second.count) second optimizer moments for \(n) balconies; \(c.state.configuration.optimizer.rawValue) keeps \(firstCount) and \(secondCount)")
        }
        for (m, b) in zip(c.moments.first + c.moments.second, c.balconies + c.balconies) {
            try m.validate(config: config, source: path)
            guard m.exit == b.exit else { throw BalconyFileError.invalid(path, "optimizer moments for exit \(m.exit) are paired with the balcony at exit \(b.exit)") }
        }
        var info = c.info
        info.training = c.state.configuration
        info.step = c.state.step
        info.tokensSeen = c.state.tokensSeen
        info.baseFingerprint = c.state.baseFingerprint
        var metadata = try BalconyFile.metadata(exits: exits, info: info, format: format)
        metadata[stateKey] = try stateJSON(c.state)
        try BalconyTensorLayout.write(groups(c), config: config, metadata: metadata, to: url)
    }

    /// Makes the balcony file at `url` hold `checkpoint`'s balconies, rewriting it when it is
    /// missing or holds another step. `balcony train` writes the training state first and the
    /// balcony file second; after a crash between the two writes, a resumed run calls this so
    /// that the folder is consistent again before it trains on. Returns whether it wrote.
    @discardableResult
    public static func syncBalconies(_ checkpoint: TrainingCheckpoint, config: LlamaConfig, to url: URL) throws -> Bool {
        var info = checkpoint.info
        info.step = checkpoint.state.step
        info.tokensSeen = checkpoint.state.tokensSeen
        if let file = try? SafetensorsFile(url: url), let (existing, _) = try? BalconyFile.parseMetadata(file.metadata, path: url.path),
           existing.step == info.step, existing.tokensSeen == info.tokensSeen {
            return false
        }
        try BalconyFile.write(checkpoint.balconies, info: info, config: config, to: url)
        return true
    }

    static func stateJSON(_ s: TrainingState) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(s), as: UTF8.self)
    }

    /// Reads a training state for the base model of shape `config` and fingerprint `fingerprint`.
    ///
    /// With `resuming`, refuses a state whose settings differ from the current command's in any
    /// way that would change what the run computes (every `TrainingConfiguration` field except
    /// `data_files`, which may move; the data themselves are compared through `dataDigest` when
    /// given), naming each differing setting.
    /// - Throws: `BalconyFileError`, or `ModelFileError` for files that are not valid safetensors.
    public static func read(from url: URL, config: LlamaConfig, fingerprint: String,
                            resuming current: TrainingConfiguration? = nil, dataDigest: String? = nil) throws -> TrainingCheckpoint {
        let file = try SafetensorsFile(url: url)
        let path = file.path
        let m = file.metadata
        guard m[BalconyFile.Key.format] == format else {
            let what = m[BalconyFile.Key.format] == BalconyFile.format ? "a balcony file" : "not a Balcony training state"
            throw BalconyFileError.invalid(path, "it is \(what); --resume needs the \(fileName) a training run wrote into its output folder")
        }
        let (info, exits) = try BalconyFile.parseMetadata(m, path: path)
        guard let json = m[stateKey] else {
            throw BalconyFileError.invalid(path, "metadata '\(stateKey)' is missing; the file is damaged or was not written by Balcony")
        }
        let state: TrainingState
        do { state = try JSONDecoder().decode(TrainingState.self, from: Data(json.utf8)) }
        catch { throw BalconyFileError.invalid(path, "metadata '\(stateKey)' cannot be decoded (\(error.localizedDescription)); the file is damaged") }
        guard state.configuration.exits == exits else {
            throw BalconyFileError.invalid(path, "its training state lists exits \(state.configuration.exits) but its tensors are for \(exits); the file is damaged")
        }
        var checkedInfo = info
        checkedInfo.baseFingerprint = state.baseFingerprint
        try BalconyFile.checkBase(info: checkedInfo, fingerprint: fingerprint, config: config, exits: exits, path: path)

        if let current {
            var reasons = current.differences(from: state.configuration, ignoring: ["data_files"])
            if let dataDigest, dataDigest != state.dataDigest {
                reasons.append("the training data differ from the saved run's (token stream \(ModelFingerprint.short(state.dataDigest)), now \(ModelFingerprint.short(dataDigest)))")
            }
            if !reasons.isEmpty { throw BalconyFileError.cannotResume(path, reasons) }
        }

        let n = exits.count
        let optimizerGroups: [(prefix: String, count: Int)] = switch state.configuration.optimizer {
        case .adamw: [(firstPrefixAdam, n), (secondPrefixAdam, n)]
        case .sgd: state.configuration.momentum > 0 ? [(firstPrefixSGD, n)] : []
        }
        let source = BalconyTensorLayout.Source([file])
        try BalconyTensorLayout.check(source, groups: [(BalconyTensorLayout.balconyPrefix, n)] + optimizerGroups, config: config, path: path)
        let balconies = try BalconyTensorLayout.read(source, prefix: BalconyTensorLayout.balconyPrefix, exits: exits, config: config)
        let sets = try optimizerGroups.map { try BalconyTensorLayout.read(source, prefix: $0.prefix, exits: exits, config: config) }
        let moments = OptimizerMoments(first: sets.first ?? [], second: sets.count > 1 ? sets[1] : [])
        return TrainingCheckpoint(state: state, balconies: balconies, moments: moments, info: info)
    }
}
