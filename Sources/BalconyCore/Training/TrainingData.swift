import Foundation

/// Where the data loader stands: the epoch, and the next sequence within that epoch's order.
/// Saved in training states so that a resumed run sees exactly the batches it would have seen.
public struct DataPosition: Codable, Sendable, Equatable, Hashable {
    public var epoch: Int
    public var index: Int

    public init(epoch: Int = 0, index: Int = 0) {
        self.epoch = epoch
        self.index = index
    }

    /// The beginning of the first epoch.
    public static let start = DataPosition()
}

/// The token that separates packed documents.
public enum DocumentSeparator: Sendable, Equatable {
    /// BOS before every document (tokenizers that have a BOS id: LLaMA, Mistral, llama2.c).
    case bos(Int)
    /// EOS after every document (tokenizers without BOS, e.g. GPT-2 style; the smallest EOS id).
    case eos(Int)

    /// BOS when the tokenizer has one, else its smallest EOS id.
    /// - Throws: `TrainingDataError.noSeparator` when it has neither.
    public static func of(_ tokenizer: any Tokenizer) throws -> DocumentSeparator {
        if let bos = tokenizer.bosTokenId { return .bos(bos) }
        if let eos = tokenizer.eosTokenIds.min() { return .eos(eos) }
        throw TrainingDataError.noSeparator
    }

    public var token: Int {
        switch self { case let .bos(t), let .eos(t): t }
    }
}

/// Training data packed into fixed-length sequences (docs/training-data.md).
///
/// Documents are concatenated into one token stream with a separator at every document boundary
/// (BOS before each, or EOS after each when the tokenizer has no BOS). The stream is cut into
/// sequences of `sequenceLength + 1` tokens that overlap by one: sequence `s` is
/// `stream[s*L ... s*L + L]`, its first `L` tokens are the inputs and its last `L` the next-token
/// targets; the tail that does not fill a sequence is dropped. A `holdoutFraction` of the
/// sequences, chosen by the seed, is kept out of training. Each epoch visits the training
/// sequences in its own seeded permutation. Everything is a pure function of the documents,
/// `sequenceLength`, `holdoutFraction` and `seed`, and is the same on every platform (the shuffles
/// use Balcony's own generator and Fisher–Yates, not the standard library's unspecified ones).
public struct TrainingData: Sendable {
    public let sequenceLength: Int
    public let seed: UInt64
    public let separator: DocumentSeparator
    /// The packed stream (Int32 to halve memory; ids always fit).
    let stream: [Int32]
    /// Numbers of the training sequences, ascending.
    public let trainingSequences: [Int]
    /// Numbers of the held-out sequences, ascending (disjoint from `trainingSequences`).
    public let holdoutSequences: [Int]
    /// SHA-256 of the token stream (Int32 little-endian), recorded in training states so that a
    /// resumed run can tell whether it trains on the same data.
    public let digest: String
    /// Documents packed.
    public let documentCount: Int

    /// Packs token documents (no separators inside; empty ones are skipped).
    /// - Throws: `TrainingDataError` for bad settings, no tokens, too few tokens for one sequence,
    ///   or a holdout that leaves nothing to train on.
    public init(documents: [[Int]], separator: DocumentSeparator, sequenceLength: Int, holdoutFraction: Double = 0,
                seed: UInt64) throws {
        guard sequenceLength > 0 else { throw TrainingDataError.invalidSetting("sequence length must be positive, got \(sequenceLength)") }
        guard holdoutFraction >= 0, holdoutFraction < 1 else {
            throw TrainingDataError.invalidSetting("holdout fraction must be in [0, 1), got \(holdoutFraction)")
        }
        let nonEmpty = documents.filter { !$0.isEmpty }
        guard !nonEmpty.isEmpty else { throw TrainingDataError.noText(files: 0) }
        // The stream is Int32: an id that does not fit would wrap (release builds check nothing)
        // and train on a different token than the document holds.
        let idRange = 0...Int(Int32.max)
        switch separator {
        case let .bos(t), let .eos(t):
            guard idRange.contains(t) else { throw TrainingDataError.invalidSetting("the document separator id \(t) is outside 0...\(Int32.max)") }
        }
        for (d, doc) in nonEmpty.enumerated() {
            if let bad = doc.first(where: { !idRange.contains($0) }) {
                throw TrainingDataError.invalidSetting("document \(d) holds token id \(bad), outside 0...\(Int32.max); the tokenizer does not match the model")
            }
        }
        var stream: [Int32] = []
        stream.reserveCapacity(nonEmpty.reduce(0) { $0 + $1.count + 1 })
        for doc in nonEmpty {
            if case let .bos(t) = separator { stream.append(Int32(t)) }
            for t in doc { stream.append(Int32(t)) }
            if case let .eos(t) = separator { stream.append(Int32(t)) }
        }
        let count = (stream.count - 1) / sequenceLength
        guard count >= 1 else { throw TrainingDataError.tooFewTokens(tokens: stream.count, sequenceLength: sequenceLength) }

        var holdoutCount = 0
        if holdoutFraction > 0 {
            holdoutCount = max(1, Int((holdoutFraction * Double(count)).rounded()))
            guard holdoutCount < count else { throw TrainingDataError.noTrainingSequences(sequences: count, holdout: holdoutCount) }
        }
        var all = Array(0..<count)
        var rng = Xoshiro256StarStar(seed: NormalGenerator.seed(seed, name: "holdout"))
        if holdoutCount > 0 { Self.shuffle(&all, &rng) }
        self.holdoutSequences = all.prefix(holdoutCount).sorted()
        self.trainingSequences = all.dropFirst(holdoutCount).sorted()

        self.sequenceLength = sequenceLength
        self.seed = seed
        self.separator = separator
        self.stream = stream
        self.documentCount = nonEmpty.count
        var hasher = SHA256()
        stream.withUnsafeBytes { hasher.update($0) }
        self.digest = hasher.finalize().hex
    }

    /// Reads, tokenizes and packs the files and folders `paths` (see `TrainingDocuments`).
    public static func load(paths: [String], tokenizer: any Tokenizer, sequenceLength: Int, holdoutFraction: Double = 0,
                            seed: UInt64) throws -> TrainingData {
        let separator = try DocumentSeparator.of(tokenizer)
        let (documents, files) = try TrainingDocuments.tokenize(paths: paths, tokenizer: tokenizer)
        guard !documents.isEmpty else { throw TrainingDataError.noText(files: files) }
        return try TrainingData(documents: documents, separator: separator, sequenceLength: sequenceLength,
                                holdoutFraction: holdoutFraction, seed: seed)
    }

    /// Tokens in the packed stream (separators included).
    public var tokenCount: Int { stream.count }
    /// Sequences in the stream, training and held out.
    public var sequenceCount: Int { (stream.count - 1) / sequenceLength }

    /// Sequence number `s`: `sequenceLength + 1` tokens.
    public func sequence(_ s: Int) -> [Int] {
        let start = s * sequenceLength
        return stream[start...(start + sequenceLength)].map { Int($0) }
    }

    /// The held-out sequences, in ascending order.
    public var holdout: [[Int]] { holdoutSequences.map(sequence) }

    /// The training sequence numbers in the order epoch `epoch` visits them.
    public func epochOrder(_ epoch: Int) -> [Int] {
        var order = trainingSequences
        var rng = Xoshiro256StarStar(seed: NormalGenerator.seed(seed, name: "epoch \(epoch)"))
        Self.shuffle(&order, &rng)
        return order
    }

    /// A loader starting at `position` (a fresh run: `.start`; a resumed one: the saved position).
    /// - Throws: `TrainingDataError.invalidPosition` for a position outside these data.
    public func loader(from position: DataPosition = .start) throws -> TrainingDataLoader {
        try TrainingDataLoader(data: self, position: position)
    }

    /// Fisher–Yates with unbiased bounded draws, so the permutation depends on nothing but the
    /// generator's output.
    static func shuffle(_ a: inout [Int], _ rng: inout Xoshiro256StarStar) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(bounded(UInt64(i + 1), &rng))
            a.swapAt(i, j)
        }
    }

    /// Uniform in `0 ..< n`: rejects the top `2^64 mod n` values so every residue is equally likely.
    static func bounded(_ n: UInt64, _ rng: inout Xoshiro256StarStar) -> UInt64 {
        let threshold = (0 &- n) % n
        while true {
            let r = rng.next()
            if r >= threshold { return r % n }
        }
    }
}

/// Hands out training batches in epoch order, cycling through epochs forever. A value type: copy
/// it to peek ahead; save `position` to resume exactly.
public struct TrainingDataLoader: Sendable {
    public let data: TrainingData
    public private(set) var position: DataPosition
    /// `data.epochOrder(position.epoch)`, kept so that a batch costs no reshuffle.
    private var order: [Int]

    /// - Throws: `TrainingDataError.invalidPosition` for a negative epoch or an index past the epoch.
    public init(data: TrainingData, position: DataPosition = .start) throws {
        let length = data.trainingSequences.count
        guard position.epoch >= 0, position.index >= 0, position.index <= length else {
            throw TrainingDataError.invalidPosition(position, epochLength: length)
        }
        self.data = data
        self.position = position
        self.order = data.epochOrder(position.epoch)
    }

    /// The next `size` training sequences (`sequenceLength + 1` tokens each), continuing into the
    /// next epoch when this one runs out.
    public mutating func nextBatch(size: Int) -> [[Int]] {
        var batch: [[Int]] = []
        batch.reserveCapacity(max(size, 0))
        while batch.count < size {
            if position.index >= order.count {
                position = DataPosition(epoch: position.epoch + 1, index: 0)
                order = data.epochOrder(position.epoch)
            }
            batch.append(data.sequence(order[position.index]))
            position.index += 1
        }
        return batch
    }
}
