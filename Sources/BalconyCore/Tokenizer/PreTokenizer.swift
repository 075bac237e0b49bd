/// The regular expressions that split text into words before byte-level BPE, implemented as
/// hand-written scanners over Unicode scalars.
///
/// Why not a regex engine: Foundation's `NSRegularExpression` is slow on Linux and its `\s`, `\p{L}`
/// differ in corners from the Oniguruma engine that Hugging Face `tokenizers` uses. Each scanner
/// reproduces its pattern's alternation order and backtracking exactly, with Oniguruma's classes:
/// `\s` is the Unicode White_Space property, `\p{L}` and `\p{N}` the general categories L* and N*.
public enum PreTokenizerPattern: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// LLaMA 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: LLaMA 3's pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2

    public var regex: String {
        switch self {
        case .gpt2:
            return #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        case .llama3:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .qwen2:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        }
    }

    /// The pattern a regex string denotes, if it is one of the implemented ones.
    public init?(regex: String) {
        guard let p = Self.allCases.first(where: { $0.regex == regex }) else { return nil }
        self = p
    }

    /// The pattern llama.cpp selects for a GGUF `tokenizer.ggml.pre` value.
    public init?(ggufPre: String) {
        switch ggufPre {
        // llama.cpp's "default" adds extra splitting rules of its own; Hugging Face GPT-2-style
        // vocabularies (which is what "default" converts from) use the plain GPT-2 pattern.
        case "default", "gpt-2", "gpt2", "phi-2", "roberta-bpe", "jina-v1-en", "jina-v2-en", "jina-es", "jina-de",
             "jina-v2-es", "jina-v2-de", "jina-v2-code", "gigachat", "starcoder", "refact":
            self = .gpt2
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
            self = .llama3
        case "qwen2", "deepseek-r1-qwen", "megrez":
            self = .qwen2
        default:
            return nil
        }
    }

    /// The GGUF `tokenizer.ggml.pre` values that have a scanner.
    static let supportedGGUFNames = ["default", "gpt-2", "llama-bpe", "llama3", "qwen2", "deepseek-r1-qwen"]

    /// Splits `scalars` into words; returns the end index (exclusive) of each word in order.
    func split(_ scalars: [Unicode.Scalar]) -> [Int] {
        let classes = scalars.map(CharClass.init)
        var ends: [Int] = []
        ends.reserveCapacity(scalars.count / 3 + 1)
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in
                var i = 0
                while i < s.count {
                    let end: Int
                    switch self {
                    case .gpt2: end = Self.gpt2Match(s, c, i)
                    case .llama3: end = Self.llama3Match(s, c, i, maxDigits: 3)
                    case .qwen2: end = Self.llama3Match(s, c, i, maxDigits: 1)
                    }
                    ends.append(end)
                    i = end
                }
            }
        }
        return ends
    }

    /// Character classes that the patterns test, from Unicode properties.
    struct CharClass {
        let bits: UInt8
        static let letter: UInt8 = 1, number: UInt8 = 2, whitespace: UInt8 = 4, newline: UInt8 = 8

        init(_ s: Unicode.Scalar) {
            if s.value < 0x80 {
                let v = s.value
                if (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) { bits = Self.letter }
                else if v >= 0x30 && v <= 0x39 { bits = Self.number }
                else if v == 0x0A || v == 0x0D { bits = Self.whitespace | Self.newline }
                else if v == 0x20 || (v >= 0x09 && v <= 0x0C) { bits = Self.whitespace }
                else { bits = 0 }
                return
            }
            let p = s.properties
            switch p.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                bits = Self.letter
            case .decimalNumber, .letterNumber, .otherNumber:
                bits = Self.number
            default:
                bits = p.isWhitespace ? Self.whitespace : 0
            }
        }

        var isLetter: Bool { bits & Self.letter != 0 }
        var isNumber: Bool { bits & Self.number != 0 }
        var isWhitespace: Bool { bits & Self.whitespace != 0 }
        var isNewline: Bool { bits & Self.newline != 0 }
        /// `[^\s\p{L}\p{N}]`
        var isOther: Bool { bits == 0 }
    }

    private static let apostrophe: Unicode.Scalar = "'"
    private static let space: Unicode.Scalar = " "

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive or (LLaMA 3) case-insensitive; returns the end or nil.
    @inline(__always)
    private static func contraction(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ i: Int, ignoreCase: Bool) -> Int? {
        guard s[i] == apostrophe, i + 1 < s.count else { return nil }
        func fold(_ x: Unicode.Scalar) -> UInt32 {
            guard ignoreCase else { return x.value }
            if x.value >= 0x41 && x.value <= 0x5A { return x.value + 0x20 }
            if x.value == 0x17F { return 0x73 } // LATIN SMALL LETTER LONG S case-folds to "s"
            return x.value
        }
        let a = fold(s[i + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 } // s t m d
        guard i + 2 < s.count else { return nil }
        let b = fold(s[i + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 3 } // re ve ll
        return nil
    }

    @inline(__always)
    private static func run(_ c: UnsafeBufferPointer<CharClass>, from i: Int, while test: (CharClass) -> Bool) -> Int {
        var j = i
        while j < c.count && test(c[j]) { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at a whitespace character: the whole run if it ends the text or is one
    /// character long, else the run minus its last character (which then leads the next word).
    @inline(__always)
    private static func whitespaceRun(_ c: UnsafeBufferPointer<CharClass>, _ i: Int) -> Int {
        let end = run(c, from: i, while: { $0.isWhitespace })
        return (end == c.count || end - i == 1) ? end : end - 1
    }

    private static func gpt2Match(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ c: UnsafeBufferPointer<CharClass>, _ i: Int) -> Int {
        if let end = contraction(s, i, ignoreCase: false) { return end }
        // ` ?X+`: the optional space is taken when something of class X follows it.
        let k = (s[i] == space && i + 1 < s.count) ? i + 1 : i
        if c[k].isLetter { return run(c, from: k, while: { $0.isLetter }) }
        if c[k].isNumber { return run(c, from: k, while: { $0.isNumber }) }
        if c[k].isOther { return run(c, from: k, while: { $0.isOther }) }
        return whitespaceRun(c, i)
    }

    private static func llama3Match(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ c: UnsafeBufferPointer<CharClass>, _ i: Int,
                                    maxDigits: Int) -> Int {
        if let end = contraction(s, i, ignoreCase: true) { return end }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !c[i].isNewline && !c[i].isLetter && !c[i].isNumber && i + 1 < s.count && c[i + 1].isLetter {
            return run(c, from: i + 1, while: { $0.isLetter })
        }
        if c[i].isLetter { return run(c, from: i, while: { $0.isLetter }) }
        // `\p{N}{1,maxDigits}`
        if c[i].isNumber { return min(run(c, from: i, while: { $0.isNumber }), i + maxDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let k = (s[i] == space && i + 1 < s.count) ? i + 1 : i
        if c[k].isOther {
            let end = run(c, from: k, while: { $0.isOther })
            return run(c, from: end, while: { $0.isNewline })
        }
        // `\s*[\r\n]+`: through the last newline of the whitespace run starting here.
        let end = run(c, from: i, while: { $0.isWhitespace })
        var j = end - 1
        while j >= i && !c[j].isNewline { j -= 1 }
        if j >= i { return j + 1 }
        return whitespaceRun(c, i)
    }
}
