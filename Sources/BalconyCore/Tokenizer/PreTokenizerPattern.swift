/// One regular expression that splits text into words before byte-level BPE, implemented as a
/// hand-written scanner over Unicode scalars.
///
/// Why not a regex engine: Foundation's `NSRegularExpression` is slow on Linux and its `\s`, `\p{L}`
/// differ in corners from the Oniguruma engine that Hugging Face `tokenizers` uses. Each scanner
/// reproduces its pattern's alternation order and backtracking exactly, with Oniguruma's classes
/// (`CharClass`). A `PreTokenizer` runs several of them in sequence, as llama.cpp and `tokenizers`'
/// `Sequence` of `Split`s do.
public enum PreTokenizerPattern: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// LLaMA 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: LLaMA 3's pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2
    /// `\p{N}`: every digit on its own (SmolLM, StarCoder, Command-R; `Digits(individual_digits)`).
    case digit
    /// `\p{N}+`
    case digitRun
    /// `\p{N}{1,3}` (DeepSeek V3)
    case digitTriple
    /// `[0-9][0-9][0-9]` (Falcon)
    case asciiDigitTriple
    /// `[\r\n]` (DeepSeek LLM and Coder)
    case newline
    /// `\s+$` (DeepSeek LLM): trailing whitespace.
    case trailingWhitespace
    /// `\s?[A-Za-zµÀ-Ö...]+`: DeepSeek LLM's letters, an explicit list of cased-script ranges.
    case deepseekLetters
    /// `\s?[!-/:-~！-／：-～‘-‟　-。]+`: DeepSeek LLM's punctuation.
    case deepseekPunctuation
    /// `[一-龥ࠀ-一가-퟿]+`: DeepSeek LLM and Coder's CJK runs.
    case deepseekCJK
    /// `\s?\p{L}+` (DeepSeek Coder)
    case spaceLetters
    /// `\s?\p{P}+` (DeepSeek Coder)
    case spacePunctuation
    /// `[一-龥぀-ゟ゠-ヿ]+` (DeepSeek V3): Han and kana runs.
    case deepseekKana
    /// DeepSeek V3's word pattern: an ASCII punctuation mark may lead ASCII letters; letters carry
    /// their combining marks; punctuation and symbols group.
    case deepseekV3
    /// `[\p{P}\$\+<=>\^~\|`]+` (Falcon)
    case falconPunctuation
    /// Tekken (Mistral NeMo): words split at lower-to-upper case changes, single digits.
    case tekken

    public var regex: String {
        switch self {
        case .gpt2:
            return #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        case .llama3:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .qwen2:
            return #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        case .digit: return #"\p{N}"#
        case .digitRun: return #"\p{N}+"#
        case .digitTriple: return #"\p{N}{1,3}"#
        case .asciiDigitTriple: return "[0-9][0-9][0-9]"
        case .newline: return "[\r\n]"
        case .trailingWhitespace: return #"\s+$"#
        case .deepseekLetters:
            // Built from the ranges so that no editor's Unicode normalization can alter it (the class
            // holds U+212A KELVIN SIGN and Greek letters that NFC would rewrite).
            let ranges = PreTokenizerScanners.deepseekLetterRanges.map { lo, hi in
                lo == hi ? String(Unicode.Scalar(lo)!) : String(Unicode.Scalar(lo)!) + "-" + String(Unicode.Scalar(hi)!)
            }
            return #"\s?["# + ranges.joined() + "]+"
        case .deepseekPunctuation: return #"\s?[!-/:-~！-／：-～‘-‟　-。]+"#
        case .deepseekCJK: return "[一-龥ࠀ-一가-\u{D7FF}]+"
        case .spaceLetters: return #"\s?\p{L}+"#
        case .spacePunctuation: return #"\s?\p{P}+"#
        case .deepseekKana: return "[一-龥぀-ゟ゠-ヿ]+"
        case .deepseekV3:
            return ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##
        case .falconPunctuation: return #"[\p{P}\$\+<=>\^~\|`]+"#
        case .tekken:
            return #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        }
    }

    /// The pattern a regex string denotes, if it is one of the implemented ones.
    public init?(regex: String) {
        guard let p = Self.allCases.first(where: { $0.regex == regex }) else { return nil }
        self = p
    }

    /// Splits `scalars` into words on its own (one `Split` with behavior `Isolated`): returns the
    /// end index (exclusive) of each word in order.
    func split(_ scalars: [Unicode.Scalar]) -> [Int] {
        PreTokenizer([self]).split(scalars)
    }

    /// The end of the match that starts at `i`, or nil when none starts there. The buffers hold
    /// one piece of text: the scanners treat its end as the end of the text, as a regex run on
    /// that piece alone does.
    @inline(__always)
    func match(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ c: UnsafeBufferPointer<CharClass>, _ i: Int) -> Int? {
        typealias S = PreTokenizerScanners
        switch self {
        case .gpt2: return S.gpt2(s, c, i)
        case .llama3: return S.llama3(s, c, i, maxDigits: 3)
        case .qwen2: return S.llama3(s, c, i, maxDigits: 1)
        case .digit: return c[i].isNumber ? i + 1 : nil
        case .digitRun: return S.run(c, i, CharClass.number)
        case .digitTriple: return S.run(c, i, CharClass.number).map { min($0, i + 3) }
        case .asciiDigitTriple:
            guard i + 3 <= s.count else { return nil }
            for k in i..<(i + 3) where !(0x30...0x39).contains(s[k].value) { return nil }
            return i + 3
        case .newline: return c[i].isNewline ? i + 1 : nil
        case .trailingWhitespace:
            // `\s+$`: only a whitespace run that reaches the end (`$` also matches before a final
            // "\n", but the newline stage has isolated every "\n" before this one runs).
            let end = S.run(c, i, CharClass.whitespace) ?? i
            return end > i && end == s.count ? end : nil
        case .deepseekLetters: return S.spaceThenRun(s, c, i) { S.isDeepseekLetter($0) }
        case .deepseekPunctuation: return S.spaceThenRun(s, c, i) { S.isDeepseekPunctuation($0) }
        case .deepseekCJK: return S.run(c, i, CharClass.deepseekCJK)
        case .spaceLetters: return S.spaceThenClass(c, i, CharClass.letter)
        case .spacePunctuation: return S.spaceThenClass(c, i, CharClass.punctuation)
        case .deepseekKana: return S.run(c, i, CharClass.deepseekKana)
        case .deepseekV3: return S.deepseekV3(s, c, i)
        case .falconPunctuation: return S.falconPunctuation(s, c, i)
        case .tekken: return S.tekken(s, c, i)
        }
    }
}
