/// The Unicode classes that pre-tokenizer patterns test, computed once per scalar.
///
/// Classes follow Oniguruma (what Hugging Face `tokenizers` runs): `\s` is the White_Space property,
/// `\p{L}`, `\p{N}`, `\p{P}`, `\p{S}`, `\p{M}` are general-category groups. The ASCII table is
/// written out because it is hit for almost every character and `Unicode.Scalar.Properties` is slow.
struct CharClass {
    let bits: UInt16
    static let letter: UInt16 = 1, number: UInt16 = 2, whitespace: UInt16 = 4, newline: UInt16 = 8
    static let punctuation: UInt16 = 16, symbol: UInt16 = 32, mark: UInt16 = 64
    /// Lu and Lt (tekken's "upper" letters), Ll (its "lower" ones); Lm and Lo are neither.
    static let upper: UInt16 = 128, lower: UInt16 = 256
    /// Scalars of CJK-like scripts that DeepSeek's patterns isolate (ranges of llama.cpp's regexes).
    static let deepseekCJK: UInt16 = 512, deepseekKana: UInt16 = 1024

    init(_ s: Unicode.Scalar) {
        let v = s.value
        if v < 0x80 {
            if v >= 0x41 && v <= 0x5A { bits = Self.letter | Self.upper }
            else if v >= 0x61 && v <= 0x7A { bits = Self.letter | Self.lower }
            else if v >= 0x30 && v <= 0x39 { bits = Self.number }
            else if v == 0x0A || v == 0x0D { bits = Self.whitespace | Self.newline }
            else if v == 0x20 || (v >= 0x09 && v <= 0x0C) { bits = Self.whitespace }
            else if v < 0x20 || v == 0x7F { bits = 0 }
            // ASCII symbols (Sm, Sc, Sk): $ + < = > ^ ` | ~; every other printable is punctuation.
            else {
                switch v {
                case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x60, 0x7C, 0x7E: bits = Self.symbol
                default: bits = Self.punctuation
                }
            }
            return
        }
        let p = s.properties
        var b: UInt16
        switch p.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: b = Self.letter | Self.upper
        case .lowercaseLetter: b = Self.letter | Self.lower
        case .modifierLetter, .otherLetter: b = Self.letter
        case .decimalNumber, .letterNumber, .otherNumber: b = Self.number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            b = Self.punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: b = Self.symbol
        case .nonspacingMark, .spacingMark, .enclosingMark: b = Self.mark
        default: b = 0
        }
        if p.isWhitespace { b |= Self.whitespace }
        if (0x4E00...0x9FA5).contains(v) || (0x800...0x4E00).contains(v) || (0xAC00...0xD7FF).contains(v) {
            b |= Self.deepseekCJK
        }
        if (0x4E00...0x9FA5).contains(v) || (0x3040...0x30FF).contains(v) { b |= Self.deepseekKana }
        bits = b
    }

    @inline(__always) func has(_ mask: UInt16) -> Bool { bits & mask != 0 }
    var isLetter: Bool { has(Self.letter) }
    var isNumber: Bool { has(Self.number) }
    var isWhitespace: Bool { has(Self.whitespace) }
    var isNewline: Bool { has(Self.newline) }
    /// `[^\s\p{L}\p{N}]`
    var isOther: Bool { bits & (Self.letter | Self.number | Self.whitespace) == 0 }
}
