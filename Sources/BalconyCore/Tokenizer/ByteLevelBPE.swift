import Foundation

/// GPT-2-style byte-level BPE, as used by GPT-2, LLaMA 3 and Qwen2.
///
/// Encoding follows Hugging Face `tokenizers` (ByteLevel pre-tokenizer + BPE model) and llama.cpp's
/// `llm_tokenizer_bpe`: non-special added tokens are split out; the rest is split into words by the
/// pre-tokenizer pattern; each word's UTF-8 bytes start as the single-byte tokens (spelled through
/// GPT-2's `bytes_to_unicode` table in the vocabulary), and listed merges are applied lowest rank
/// first with a priority queue.
public struct ByteLevelBPE: Tokenizer {
    /// The vocabulary's own texts, in the byte-to-unicode spelling ("Ġthe").
    public let tokens: [String]
    public let types: [TokenType]
    /// How text is split into words; nil keeps each text segment whole.
    public let preTokenizer: PreTokenizer?
    /// Prepend a space to a text that does not start with one (ByteLevel `add_prefix_space`).
    public let addPrefixSpace: Bool
    /// Emit a word that is itself a token without merging (`ignore_merges`, LLaMA 3).
    public let ignoreMerges: Bool
    /// Apply Unicode NFC before anything else (Qwen2's normalizer).
    public let normalizesNFC: Bool
    public let bosTokenId: Int?
    public let eosTokenIds: Set<Int>
    public let unknownTokenId: Int?
    public let addsBOS: Bool

    public var vocabularySize: Int { tokens.count }
    public var kind: String { "byte-level-bpe" }

    /// Id of the token spelling each single byte, or -1.
    let byteTokens: [Int32]
    /// Raw bytes of every normal token -> id (for `ignoreMerges`).
    let words: PieceTable
    let merges: PairTable
    /// Added tokens that are matched in raw text before pre-tokenization, longest first.
    let addedTokens: [(bytes: [UInt8], id: Int32)]
    /// The same plus control tokens, for `encode(_:parseSpecial:)`.
    let addedAndSpecialTokens: [(bytes: [UInt8], id: Int32)]
    let decoded: [[UInt8]]

    /// - Parameters:
    ///   - tokens: the vocabulary in byte-to-unicode spelling; ids are indices.
    ///   - types: per token; `.control` tokens decode to nothing and are never produced from text,
    ///     `.userDefined` tokens are matched whole in the text.
    ///   - merges: pairs of token texts in rank order (the first merges first).
    /// - Throws: `TokenizerError.corrupt` for inconsistent tables.
    public init(tokens: [String], types: [TokenType]? = nil, merges: [(String, String)], preTokenizer: PreTokenizer?,
                addPrefixSpace: Bool = false, ignoreMerges: Bool = false, normalizesNFC: Bool = false,
                bosTokenId: Int?, eosTokenIds: Set<Int>, unknownTokenId: Int? = nil, addsBOS: Bool = false,
                source: String = "vocabulary") throws {
        let n = tokens.count
        guard n > 0 else { throw TokenizerError.corrupt(source, "the vocabulary is empty") }
        let types = types ?? [TokenType](repeating: .normal, count: n)
        guard types.count == n else { throw TokenizerError.corrupt(source, "\(n) tokens but \(types.count) token types") }
        for (name, id) in [("BOS", bosTokenId), ("unknown", unknownTokenId)] + eosTokenIds.map({ ("EOS", $0) }) {
            if let id, !(0..<n).contains(id) {
                throw TokenizerError.corrupt(source, "\(name) token id \(id) is outside the vocabulary of \(n)")
            }
        }

        var idOf: [String: Int32] = [:]
        idOf.reserveCapacity(n)
        for (i, t) in tokens.enumerated() where idOf[t] == nil || types[i] == .normal { idOf[t] = Int32(i) }

        var byteTokens = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = idOf[String(ByteLevelBPE.byteToUnicode[b])] { byteTokens[b] = id }
        }

        var decoded: [[UInt8]] = []
        decoded.reserveCapacity(n)
        var wordEntries: [(key: [UInt8], value: Int)] = []
        var added: [(bytes: [UInt8], id: Int32)] = []
        var special: [(bytes: [UInt8], id: Int32)] = []
        for (i, t) in tokens.enumerated() {
            switch types[i] {
            case .control, .unknown:
                decoded.append([])
                if !t.isEmpty { special.append((Array(t.utf8), Int32(i))) }
            case .unused:
                decoded.append([])
            case .userDefined:
                // Added tokens are plain text, not byte-to-unicode spellings (llama.cpp's
                // `token_to_piece` copies them as they are).
                decoded.append(Array(t.utf8))
                if !t.isEmpty { added.append((Array(t.utf8), Int32(i))) }
            case .normal, .byte:
                let raw = Self.unicodeToBytes(t)
                decoded.append(raw ?? Array(t.utf8))
                if let raw { wordEntries.append((raw, i)) }
            }
        }

        var table = PairTable(capacity: merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            // Merges whose parts or result are not tokens can never apply; skip them as llama.cpp does.
            guard let ia = idOf[a], let ib = idOf[b], let r = idOf[a + b] else { continue }
            table.insert(ia, ib, rank: Int32(rank), result: r)
        }

        self.tokens = tokens
        self.types = types
        self.preTokenizer = preTokenizer
        self.addPrefixSpace = addPrefixSpace
        self.ignoreMerges = ignoreMerges
        self.normalizesNFC = normalizesNFC
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.unknownTokenId = unknownTokenId
        self.addsBOS = addsBOS
        self.byteTokens = byteTokens
        self.words = try PieceTable(wordEntries, source: source)
        self.merges = table
        self.addedTokens = added.sorted { $0.bytes.count > $1.bytes.count }
        self.addedAndSpecialTokens = (added + special).sorted { $0.bytes.count > $1.bytes.count }
        self.decoded = decoded
    }

    // MARK: - GPT-2's byte <-> unicode table

    /// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other 68
    /// bytes are spelled with U+0100 onwards in byte order (so " " is "Ġ", "\n" is "Ċ").
    public static let byteToUnicode: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `byteToUnicode`, indexed by scalar value (all of them are below U+0144).
    static let unicodeToByte: [Int16] = {
        var inverse = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToUnicode.enumerated() { inverse[Int(s.value)] = Int16(b) }
        return inverse
    }()

    /// The raw bytes a byte-to-unicode spelling stands for, or nil if it has other characters.
    static func unicodeToBytes(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            guard s.value < 0x144, case let b = unicodeToByte[Int(s.value)], b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    // MARK: - Encoding

    public func encode(_ text: String) -> [Int] {
        encode(text, splittingAt: addedTokens)
    }

    /// `encode(text)`, or with `parseSpecial` the texts of control tokens ("<|eot_id|>") become
    /// those ids, as Hugging Face `tokenizers` and llama.cpp's `parse_special` do.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        encode(text, splittingAt: parseSpecial ? addedAndSpecialTokens : addedTokens)
    }

    private func encode(_ text: String, splittingAt tokens: [(bytes: [UInt8], id: Int32)]) -> [Int] {
        let text = normalizesNFC ? text.precomposedStringWithCanonicalMapping : text
        var out: [Int] = []
        // Added tokens are split out first; the text between them is pre-tokenized on its own.
        forEachSegment(Array(text.utf8), splittingAt: tokens) { segment, id in
            if let id { out.append(Int(id)) } else { encodeSegment(segment, into: &out) }
        }
        return out
    }

    private func encodeSegment(_ segment: ArraySlice<UInt8>, into out: inout [Int]) {
        guard !segment.isEmpty else { return }
        var raw = Array(segment)
        if addPrefixSpace && raw.first != 0x20 { raw.insert(0x20, at: 0) }
        guard let preTokenizer else {
            raw.withUnsafeBufferPointer { encodeWord($0, into: &out) }
            return
        }
        let text = String(decoding: raw, as: UTF8.self)
        let scalars = Array(text.unicodeScalars)
        var offsets = [Int](repeating: 0, count: scalars.count + 1)
        for (k, s) in scalars.enumerated() { offsets[k + 1] = offsets[k] + UTF8.width(s) }
        raw.withUnsafeBufferPointer { buffer in
            var start = 0
            for end in preTokenizer.split(scalars) {
                encodeWord(UnsafeBufferPointer(rebasing: buffer[offsets[start]..<offsets[end]]), into: &out)
                start = end
            }
        }
    }

    /// BPE on the bytes of one word.
    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int]) {
        if ignoreMerges, let id = words.lookup(word) {
            out.append(Int(id))
            return
        }
        var symbols: [MergeSymbol] = []
        symbols.reserveCapacity(word.count)
        for (k, b) in word.enumerated() {
            var id = byteTokens[Int(b)]
            if id < 0 {
                // A byte without a token: `tokenizers` emits the unknown token in its place, or drops it.
                guard let unk = unknownTokenId else { continue }
                id = Int32(unk)
            }
            symbols.append(MergeSymbol(start: Int32(k), length: 1, prev: Int32(symbols.count - 1),
                                       next: Int32(symbols.count + 1), id: id))
        }
        guard !symbols.isEmpty else { return }
        symbols[symbols.count - 1].next = -1
        mergeByRank(&symbols, merges)
        var i: Int32 = 0
        while i >= 0 {
            out.append(Int(symbols[Int(i)].id))
            i = symbols[Int(i)].next
        }
    }

    // MARK: - Decoding

    public func piece(for id: Int) -> String {
        tokens.indices.contains(id) ? tokens[id] : ""
    }

    /// The raw bytes the token spells; control tokens give nothing, added tokens their text.
    public func bytes(for id: Int, previous: Int?) -> [UInt8] {
        decoded.indices.contains(id) ? decoded[id] : []
    }
}
