import Foundation

/// The kind of a vocabulary entry, with SentencePiece's (and GGUF `tokenizer.ggml.token_type`'s)
/// numbering.
public enum TokenType: Int32, Sendable {
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6
}

/// SentencePiece BPE with byte fallback, as used by LLaMA 1/2, Mistral, TinyLlama and llama2.c.
///
/// Encoding follows `sentencepiece`'s `bpe_model.cc` and llama.cpp's `llm_tokenizer_spm`: the text is
/// normalized (spaces become "▁", a "▁" is prepended), split into UTF-8 characters, and the
/// adjacent pair to merge next is chosen by a priority queue over a linked list of symbols, so
/// that a whole megabyte encodes in one call in O(n log n). Symbols that are not in the
/// vocabulary fall back to the byte pieces `<0xXX>`.
///
/// Two merge rules exist. SentencePiece's own files (`tokenizer.model`, llama2.c `tokenizer.bin`,
/// GGUF `llama`) merge any pair whose concatenation is a piece, the best-scoring one first.
/// Hugging Face `tokenizer.json` files list merges explicitly: only listed pairs merge, the
/// lowest rank first.
public struct SentencePieceBPE: Tokenizer {
    /// How text is prepared before it is split into characters.
    public struct Normalization: Sendable, Equatable {
        /// Prepend "▁" to the text (SentencePiece `add_dummy_prefix`, HF `Prepend`/`Metaspace`).
        public var addDummyPrefix: Bool
        /// Skip the dummy prefix when the text already starts with "▁" after escaping, as Hugging
        /// Face's `Metaspace` pre-tokenizer does (SentencePiece itself never skips it).
        public var dummyPrefixOnlyIfAbsent: Bool
        /// With special-token parsing, give only a text's first segment the dummy prefix (Hugging
        /// Face `Metaspace` with `prepend_scheme: "first"`); otherwise every segment between special
        /// tokens gets one (llama.cpp, Hugging Face's `Prepend` normalizer).
        public var dummyPrefixOnFirstSegmentOnly: Bool
        /// Replace " " by "▁" (SentencePiece `escape_whitespaces`).
        public var escapeWhitespaces: Bool
        /// Drop leading and trailing spaces and collapse runs of spaces into one (SentencePiece
        /// `remove_extra_whitespaces`; only U+0020 counts, tabs and newlines are kept).
        public var removeExtraWhitespaces: Bool

        public init(addDummyPrefix: Bool = true, dummyPrefixOnlyIfAbsent: Bool = false,
                    dummyPrefixOnFirstSegmentOnly: Bool = false, escapeWhitespaces: Bool = true,
                    removeExtraWhitespaces: Bool = false) {
            self.addDummyPrefix = addDummyPrefix
            self.dummyPrefixOnlyIfAbsent = dummyPrefixOnlyIfAbsent
            self.dummyPrefixOnFirstSegmentOnly = dummyPrefixOnFirstSegmentOnly
            self.escapeWhitespaces = escapeWhitespaces
            self.removeExtraWhitespaces = removeExtraWhitespaces
        }

        /// llama2.c and LLaMA-2's `tokenizer.model`: dummy prefix, escaped spaces, nothing removed.
        public static let llama = Normalization()
    }

    /// The vocabulary's own texts, with "▁" for spaces.
    public let pieces: [String]
    public let scores: [Float]
    public let types: [TokenType]
    public let normalization: Normalization
    public let bosTokenId: Int?
    public let eosTokenIds: Set<Int>
    public let unknownTokenId: Int?
    public let addsBOS: Bool
    /// Whether characters outside the vocabulary become `<0xXX>` byte pieces (otherwise `<unk>`).
    public let byteFallback: Bool

    public var vocabularySize: Int { pieces.count }
    public var kind: String { "sentencepiece-bpe" }

    /// Pieces that merging may produce (scores rule) or that a character may start as (ranks rule).
    let table: PieceTable
    /// The explicit merges of the ranks rule; nil for the scores rule.
    let merges: PairTable?
    /// Id of `<0xXX>` for each byte, or -1.
    let byteTokens: [Int32]
    /// User-defined pieces, matched whole before merging and never merged (SentencePiece's
    /// "frozen" symbols), longest first.
    let userDefined: [(bytes: [UInt8], id: Int32)]
    /// The bytes each id decodes to ("▁" already turned into a space).
    let decoded: [[UInt8]]
    /// Control and unknown pieces by their text, longest first, for `encode(_:parseSpecial:)`.
    let specialTokens: [(bytes: [UInt8], id: Int32)]

    /// A tokenizer that merges by piece score (SentencePiece's own rule).
    /// - Parameters:
    ///   - pieces: the vocabulary, "▁" for spaces; byte pieces spelled `<0xXX>`.
    ///   - types: one per piece; pass `nil` to infer (`<0xXX>` pieces are bytes, `unknownTokenId`
    ///     is unknown, BOS/EOS are control, the rest normal).
    /// - Throws: `TokenizerError.corrupt` when the arrays disagree in length or an id is out of range.
    public init(pieces: [String], scores: [Float], types: [TokenType]? = nil, bosTokenId: Int?, eosTokenIds: Set<Int>,
                unknownTokenId: Int?, addsBOS: Bool = true, byteFallback: Bool = true,
                normalization: Normalization = .llama, source: String = "vocabulary") throws {
        try self.init(pieces: pieces, scores: scores, types: types, merges: nil, bosTokenId: bosTokenId,
                      eosTokenIds: eosTokenIds, unknownTokenId: unknownTokenId, addsBOS: addsBOS,
                      byteFallback: byteFallback, normalization: normalization, source: source)
    }

    /// The general initializer; `merges` (pairs of ids, in rank order) selects the ranks rule.
    init(pieces: [String], scores: [Float], types: [TokenType]?, merges: [(Int32, Int32)]?, bosTokenId: Int?,
         eosTokenIds: Set<Int>, unknownTokenId: Int?, addsBOS: Bool, byteFallback: Bool,
         normalization: Normalization, source: String) throws {
        let n = pieces.count
        guard n > 0 else { throw TokenizerError.corrupt(source, "the vocabulary is empty") }
        guard scores.count == n else {
            throw TokenizerError.corrupt(source, "\(n) pieces but \(scores.count) scores")
        }
        for (name, id) in [("BOS", bosTokenId), ("unknown", unknownTokenId)] + eosTokenIds.map({ ("EOS", $0) }) {
            if let id, !(0..<n).contains(id) {
                throw TokenizerError.corrupt(source, "\(name) token id \(id) is outside the vocabulary of \(n)")
            }
        }
        var types = types ?? pieces.enumerated().map { i, p in
            if i == unknownTokenId { return .unknown }
            if i == bosTokenId || eosTokenIds.contains(i) { return .control }
            return Self.byteValue(p) != nil ? .byte : .normal
        }
        guard types.count == n else { throw TokenizerError.corrupt(source, "\(n) pieces but \(types.count) token types") }
        if let unk = unknownTokenId, types[unk] == .normal { types[unk] = .unknown }

        var byteTokens = [Int32](repeating: -1, count: 256)
        for (i, p) in pieces.enumerated() where types[i] == .byte {
            if let b = Self.byteValue(p), byteTokens[Int(b)] < 0 { byteTokens[Int(b)] = Int32(i) }
        }

        // Scores rule: SentencePiece only merges into normal, user-defined and unused pieces; control,
        // unknown and byte pieces are reserved ids that text never turns into. Ranks rule: a
        // character may start as any vocabulary entry, as in `tokenizers`' BPE model.
        let entries = pieces.enumerated().compactMap { i, p -> (key: [UInt8], value: Int)? in
            if merges == nil, types[i] == .control || types[i] == .unknown || types[i] == .byte { return nil }
            return (Array(p.utf8), i)
        }
        table = try PieceTable(entries, source: source)

        if let merges {
            var pairTable = PairTable(capacity: merges.count)
            for (rank, (a, b)) in merges.enumerated() {
                guard (0..<Int32(n)).contains(a), (0..<Int32(n)).contains(b) else {
                    throw TokenizerError.corrupt(source, "merge \(rank) refers to a token outside the vocabulary")
                }
                guard let result = table.lookup(Array(pieces[Int(a)].utf8) + Array(pieces[Int(b)].utf8)) else {
                    throw TokenizerError.corrupt(source,
                        "merge \(rank) ('\(pieces[Int(a)]) \(pieces[Int(b)])') produces a piece that is not in the vocabulary")
                }
                pairTable.insert(a, b, rank: Int32(rank), result: result)
            }
            self.merges = pairTable
        } else {
            self.merges = nil
        }

        userDefined = pieces.enumerated()
            .filter { types[$0.offset] == .userDefined && !$0.element.isEmpty }
            .map { (Array($0.element.utf8), Int32($0.offset)) }
            .sorted { $0.bytes.count > $1.bytes.count }

        specialTokens = pieces.enumerated()
            .filter { (types[$0.offset] == .control || types[$0.offset] == .unknown) && !$0.element.isEmpty }
            .map { (Array($0.element.utf8), Int32($0.offset)) }
            .sorted { $0.bytes.count > $1.bytes.count }

        decoded = pieces.enumerated().map { i, p in
            switch types[i] {
            case .normal, .userDefined: return Array(p.replacingOccurrences(of: "\u{2581}", with: " ").utf8)
            case .byte: return Self.byteValue(p).map { [$0] } ?? []
            case .control, .unknown, .unused: return []
            }
        }

        self.pieces = pieces
        self.scores = scores
        self.types = types
        self.byteTokens = byteTokens
        self.normalization = normalization
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.unknownTokenId = unknownTokenId
        self.addsBOS = addsBOS
        self.byteFallback = byteFallback
    }

    /// The byte of a `<0xXX>` piece.
    static func byteValue(_ piece: String) -> UInt8? {
        let u = Array(piece.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        guard let h = hex(u[3]), let l = hex(u[4]) else { return nil }
        return h << 4 | l
    }

    // MARK: - Encoding

    public func encode(_ text: String) -> [Int] {
        encodeSegment(Array(text.utf8)[...], firstSegment: true)
    }

    /// `encode(text)`, or with `parseSpecial` the texts of control pieces ("<s>", "</s>", "<unk>")
    /// become those ids and the text between them is encoded segment by segment.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        guard parseSpecial, !specialTokens.isEmpty else { return encode(text) }
        var out: [Int] = []
        forEachSegment(Array(text.utf8), splittingAt: specialTokens) { segment, id in
            if let id {
                out.append(Int(id))
            } else {
                out += encodeSegment(segment, firstSegment: segment.startIndex == 0)
            }
        }
        return out
    }

    private func encodeSegment(_ input: ArraySlice<UInt8>, firstSegment: Bool) -> [Int] {
        let normalized = normalize(input, firstSegment: firstSegment)
        guard !normalized.isEmpty else { return [] }
        return normalized.withUnsafeBufferPointer { encodeNormalized($0) }
    }

    func normalize(_ text: String) -> [UInt8] {
        normalize(Array(text.utf8)[...], firstSegment: true)
    }

    /// SentencePiece's `Normalizer::Normalize` for the identity rule, byte by byte.
    func normalize(_ input: ArraySlice<UInt8>, firstSegment: Bool) -> [UInt8] {
        let space: [UInt8] = normalization.escapeWhitespaces ? [0xE2, 0x96, 0x81] : [0x20]
        var start = input.startIndex
        if normalization.removeExtraWhitespaces {
            while start < input.endIndex && input[start] == 0x20 { start += 1 }
        }
        guard start < input.endIndex else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 2 + 3)
        if normalization.addDummyPrefix && (firstSegment || !normalization.dummyPrefixOnFirstSegmentOnly) {
            let startsWithSpace = input[start] == 0x20
                || (input.endIndex - start >= 3 && input[start] == 0xE2 && input[start + 1] == 0x96 && input[start + 2] == 0x81)
            if !(normalization.dummyPrefixOnlyIfAbsent && startsWithSpace) { out += space }
        }
        var previousWasSpace = normalization.removeExtraWhitespaces
        for i in start..<input.endIndex {
            let b = input[i]
            if b == 0x20 {
                if previousWasSpace { continue }
                out += space
                previousWasSpace = normalization.removeExtraWhitespaces
            } else {
                out.append(b)
                previousWasSpace = false
            }
        }
        if normalization.removeExtraWhitespaces {
            // SentencePiece strips trailing space symbols, a literal "▁" typed in the text included.
            while out.count >= space.count && Array(out.suffix(space.count)) == space {
                out.removeLast(space.count)
            }
        }
        return out
    }

    /// Splits normalized bytes into the initial symbols: user-defined pieces whole (frozen), else
    /// one UTF-8 character each.
    private func initialSymbols(_ text: UnsafeBufferPointer<UInt8>) -> (symbols: [MergeSymbol], frozen: [Bool]) {
        var symbols: [MergeSymbol] = []
        symbols.reserveCapacity(text.count)
        var frozen: [Bool] = []
        var offset = 0
        while offset < text.count {
            var length = 0
            var id: Int32 = -1
            for (bytes, uid) in userDefined where bytes.count <= text.count - offset && bytes[0] == text[offset] {
                if zip(bytes.indices, bytes).allSatisfy({ text[offset + $0] == $1 }) {
                    length = bytes.count
                    id = uid
                    break
                }
            }
            if length == 0 { length = min(utf8Length(text[offset]), text.count - offset) }
            if !userDefined.isEmpty { frozen.append(id >= 0) }
            symbols.append(MergeSymbol(start: Int32(offset), length: Int32(length), prev: Int32(symbols.count - 1),
                                       next: Int32(symbols.count + 1), id: id))
            offset += length
        }
        if !symbols.isEmpty { symbols[symbols.count - 1].next = -1 }
        return (symbols, frozen)
    }

    private func encodeNormalized(_ text: UnsafeBufferPointer<UInt8>) -> [Int] {
        if merges != nil { return encodeByRank(text) }
        var (symbols, frozen) = initialSymbols(text)
        var queue = MergeQueue(capacity: symbols.count)
        // SentencePiece lets merges produce `unused` pieces but then splits them back into the two
        // pieces they were last proposed from (`rev_merge` in bpe_model.cc): text -> left length.
        var reverseMerges: [[UInt8]: Int32] = [:]
        symbols.withUnsafeMutableBufferPointer { sym in
            func tryAdd(_ left: Int32, _ right: Int32) {
                guard left >= 0, right >= 0 else { return }
                if !frozen.isEmpty && (frozen[Int(left)] || frozen[Int(right)]) { return }
                let l = sym[Int(left)], r = sym[Int(right)]
                let size = Int(l.length + r.length)
                let span = UnsafeBufferPointer(rebasing: text[Int(l.start)..<(Int(l.start) + size)])
                guard let id = table.lookup(span) else { return }
                if types[Int(id)] == .unused { reverseMerges[Array(span)] = l.length }
                queue.push(MergeCandidate(priority: Double(scores[Int(id)]), left: left, right: right,
                                          check: Int32(size), result: id))
            }
            for i in 1..<sym.count { tryAdd(Int32(i - 1), Int32(i)) }
            while let c = queue.pop() {
                let l = sym[Int(c.left)], r = sym[Int(c.right)]
                // Skip candidates made stale by an earlier merge of either symbol.
                if l.length == 0 || r.length == 0 || l.length + r.length != c.check || l.next != c.right { continue }
                sym.mergeWithNext(c.left, result: c.result)
                tryAdd(l.prev, c.left)
                tryAdd(c.left, r.next)
            }
        }
        var out: [Int] = []
        out.reserveCapacity(symbols.count)
        var i: Int32 = symbols.isEmpty ? -1 : 0
        func emit(_ start: Int, _ length: Int) {
            let span = UnsafeBufferPointer(rebasing: text[start..<(start + length)])
            guard let id = table.lookup(span) else {
                appendUnknown(span, to: &out)
                return
            }
            if types[Int(id)] == .unused, let left = reverseMerges[Array(span)] {
                emit(start, Int(left))
                emit(start + Int(left), length - Int(left))
            } else {
                out.append(Int(id))
            }
        }
        while i >= 0 {
            let s = symbols[Int(i)]
            if s.id >= 0 && types[Int(s.id)] != .unused {
                out.append(Int(s.id))
            } else {
                emit(Int(s.start), Int(s.length))
            }
            i = s.next
        }
        return out
    }

    /// A character that is not in the vocabulary: its UTF-8 bytes as byte pieces, or `<unk>`.
    private func appendUnknown(_ span: UnsafeBufferPointer<UInt8>, to out: inout [Int]) {
        if byteFallback && span.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
            for b in span { out.append(Int(byteTokens[Int(b)])) }
        } else if let unk = unknownTokenId {
            out.append(unk)
        }
    }

    /// The ranks rule of Hugging Face `tokenizers`' BPE model (`Word::merge_all`): characters start
    /// as their own ids (unknown ones as byte pieces, or one fused `<unk>`), and only listed pairs
    /// merge, lowest rank first.
    private func encodeByRank(_ text: UnsafeBufferPointer<UInt8>) -> [Int] {
        guard let merges else { return [] }
        let (chars, _) = initialSymbols(text)
        var symbols: [MergeSymbol] = []
        symbols.reserveCapacity(chars.count)
        func add(_ start: Int32, _ length: Int32, _ id: Int32) {
            symbols.append(MergeSymbol(start: start, length: length, prev: Int32(symbols.count - 1),
                                       next: Int32(symbols.count + 1), id: id))
        }
        var lastWasUnknown = false
        for c in chars {
            if c.id >= 0 {
                add(c.start, c.length, c.id)
                lastWasUnknown = false
                continue
            }
            let span = UnsafeBufferPointer(rebasing: text[Int(c.start)..<Int(c.start + c.length)])
            if let id = table.lookup(span) {
                add(c.start, c.length, id)
                lastWasUnknown = false
            } else if byteFallback && span.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
                for (k, b) in span.enumerated() { add(c.start + Int32(k), 1, byteTokens[Int(b)]) }
                lastWasUnknown = false
            } else if let unk = unknownTokenId {
                // `fuse_unk`: a run of unknown characters becomes one `<unk>`.
                if lastWasUnknown { symbols[symbols.count - 1].length += c.length } else { add(c.start, c.length, Int32(unk)) }
                lastWasUnknown = true
            }
        }
        guard !symbols.isEmpty else { return [] }
        symbols[symbols.count - 1].next = -1
        mergeByRank(&symbols, merges)
        var out: [Int] = []
        var i: Int32 = 0
        while i >= 0 {
            out.append(Int(symbols[Int(i)].id))
            i = symbols[Int(i)].next
        }
        return out
    }
}

// MARK: - Decoding

extension SentencePieceBPE {
    public func piece(for id: Int) -> String {
        pieces.indices.contains(id) ? pieces[id] : ""
    }

    /// Byte pieces give their byte, control/unknown/unused pieces nothing, others their text with
    /// "▁" as a space. The dummy prefix's space is dropped at the start of a text and right after
    /// BOS (llama2.c's `decode`, Hugging Face's `Strip` decoder, `sentencepiece`'s `DecodeIds`).
    public func bytes(for id: Int, previous: Int?) -> [UInt8] {
        guard decoded.indices.contains(id) else { return [] }
        let b = decoded[id]
        if normalization.addDummyPrefix, previous == nil || previous == bosTokenId, b.first == 0x20,
           types[id] == .normal || types[id] == .userDefined {
            return Array(b.dropFirst())
        }
        return b
    }
}
