/// Text <-> token ids. Implementations are immutable values, safe to share between threads.
///
/// `encode` never adds BOS/EOS and never parses special-token text: it is llama.cpp's
/// `tokenize(text, add_special: false, parse_special: false)`, the convention of its test vectors.
/// Callers prepend `bosTokenId` when `addsBOS` says the model expects it.
public protocol Tokenizer: Sendable {
    /// Number of entries in the vocabulary.
    var vocabularySize: Int { get }
    /// Beginning-of-sequence id, if the vocabulary has one.
    var bosTokenId: Int? { get }
    /// Ids that end a generation (EOS, and e.g. `<|eot_id|>` for LLaMA-3 chat models).
    var eosTokenIds: Set<Int> { get }
    /// Whether the model's tokenizer configuration prepends BOS to a text (SentencePiece LLaMA-1/2
    /// and llama2.c models do; GPT-2/Qwen-style byte-level ones usually do not).
    var addsBOS: Bool { get }
    /// A short name of the algorithm for reports: "sentencepiece-bpe" or "byte-level-bpe".
    var kind: String { get }

    func encode(_ text: String) -> [Int]

    /// `encode(text)`, or with `parseSpecial` the texts of control tokens ("<s>", "<|eot_id|>")
    /// become those ids, as chat templates need (llama.cpp's `parse_special`, the default of
    /// Hugging Face `tokenizers`). The text between them is encoded segment by segment.
    func encode(_ text: String, parseSpecial: Bool) -> [Int]

    /// The vocabulary's own text for `id` (e.g. "▁Once", "<0x0A>", "Ġthe").
    func piece(for id: Int) -> String

    /// The bytes that `id` contributes to decoded text when it follows `previous` (nil at the start
    /// of a text). SentencePiece drops the leading space of a piece that follows BOS or starts the
    /// text, as llama2.c and Hugging Face's decoders do; control tokens (BOS, EOS, unk) give no bytes.
    func bytes(for id: Int, previous: Int?) -> [UInt8]
}

extension Tokenizer {
    /// Fallback for conformers that have no special tokens to parse: plain `encode(text)`.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        encode(text)
    }

    /// Decodes ids to text; invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int], previous: Int? = nil) -> String {
        var out: [UInt8] = []
        var prev = previous
        for id in ids {
            out += bytes(for: id, previous: prev)
            prev = id
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `encode(text)` with BOS in front when the model expects it (or when `bos` forces it).
    public func encodeForModel(_ text: String, bos: Bool? = nil) -> [Int] {
        let ids = encode(text)
        if bos ?? addsBOS, let b = bosTokenId { return [b] + ids }
        return ids
    }
}

/// Turns a stream of token ids into text without ever splitting a UTF-8 character: bytes of an
/// incomplete character are held back until the tokens that complete it arrive.
public struct StreamingDecoder: Sendable {
    public let tokenizer: any Tokenizer
    private var previous: Int?
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, previous: Int? = nil) {
        self.tokenizer = tokenizer
        self.previous = previous
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        pending += tokenizer.bytes(for: id, previous: previous)
        previous = id
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[0..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Flushes whatever is held back (an unfinished character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a UTF-8 sequence. Invalid bytes
    /// count as complete so that they are not held back forever.
    static func completePrefixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        var i = n - 1
        var back = 0
        while i >= 0 && back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need: Int
                if c & 0x80 == 0 { need = 1 }
                else if c & 0xE0 == 0xC0 { need = 2 }
                else if c & 0xF0 == 0xE0 { need = 3 }
                else if c & 0xF8 == 0xF0 { need = 4 }
                else { need = 1 }
                return (n - i) >= need ? n : i
            }
            i -= 1
            back += 1
        }
        return n
    }
}
