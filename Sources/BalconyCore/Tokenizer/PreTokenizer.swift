/// A sequence of regex splits, each applied to every piece the previous ones left: what llama.cpp
/// does with a pre-tokenizer's list of regexes (`unicode_regex_split`) and what Hugging Face
/// `tokenizers` does with a `Sequence` of `Split`s (behavior `Isolated`). Matches and the text
/// between them both become pieces; a later pattern never sees across a piece boundary, so each
/// piece's end is the end of the text for `(?!\S)` and `$`.
public struct PreTokenizer: Sendable, Equatable {
    public let stages: [PreTokenizerPattern]

    public init(_ stages: [PreTokenizerPattern]) {
        self.stages = stages
    }

    /// Splits `scalars` into words; returns the end index (exclusive) of each word in order.
    func split(_ scalars: [Unicode.Scalar]) -> [Int] {
        guard !scalars.isEmpty else { return [] }
        let classes = scalars.map(CharClass.init)
        var ends = [scalars.count]
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in
                for stage in stages {
                    var next: [Int] = []
                    next.reserveCapacity(max(ends.count, scalars.count / 3 + 1))
                    var start = 0
                    for end in ends {
                        Self.split(stage, UnsafeBufferPointer(rebasing: s[start..<end]),
                                   UnsafeBufferPointer(rebasing: c[start..<end]), offset: start, into: &next)
                        start = end
                    }
                    ends = next
                }
            }
        }
        return ends
    }

    /// One stage over one piece: the leftmost match at each point, the gaps kept as pieces.
    private static func split(_ stage: PreTokenizerPattern, _ s: UnsafeBufferPointer<Unicode.Scalar>,
                              _ c: UnsafeBufferPointer<CharClass>, offset: Int, into ends: inout [Int]) {
        var i = 0, gapStart = 0
        while i < s.count {
            if let end = stage.match(s, c, i), end > i {
                if gapStart < i { ends.append(offset + i) }
                ends.append(offset + end)
                i = end
                gapStart = end
            } else {
                i += 1
            }
        }
        if gapStart < s.count { ends.append(offset + s.count) }
    }
}

extension PreTokenizer {
    /// How llama.cpp tokenizes a GGUF vocabulary with `tokenizer.ggml.pre` = a given name: the
    /// regexes of `llm_tokenizer_bpe` for its pre-tokenizer type (llama-vocab.cpp), and whether a
    /// word that is itself a token skips merging (`ignore_merges`).
    public struct GGUFRules: Sendable, Equatable {
        public let preTokenizer: PreTokenizer
        public let ignoreMerges: Bool
    }

    /// The rules for a `tokenizer.ggml.pre` value, or nil for one Balcony does not implement.
    public static func gguf(pre: String) -> GGUFRules? {
        func rules(_ stages: [PreTokenizerPattern], ignoreMerges: Bool = false) -> GGUFRules {
            GGUFRules(preTokenizer: PreTokenizer(stages), ignoreMerges: ignoreMerges)
        }
        switch pre {
        // llama.cpp's "default" adds extra splitting rules of its own; Hugging Face GPT-2-style
        // vocabularies (which is what "default" converts from) use the plain GPT-2 pattern.
        case "default", "gpt-2", "gpt2", "phi-2", "roberta-bpe", "jina-v1-en", "jina-v2-en", "jina-es", "jina-de",
             "jina-v2-es", "jina-v2-de", "jina-v2-code", "gigachat", "mpt", "olmo", "jais":
            return rules([.gpt2])
        // Each digit its own piece, then GPT-2's regex (Hugging Face: Digits(individual_digits) + ByteLevel).
        case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva":
            return rules([.digit, .gpt2])
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
            return rules([.llama3], ignoreMerges: true)
        case "dbrx", "smaug-bpe", "chatglm-bpe":
            return rules([.llama3])
        case "qwen2", "deepseek-r1-qwen", "megrez", "stablelm2":
            return rules([.qwen2])
        case "deepseek-llm":
            return rules([.newline, .deepseekLetters, .deepseekPunctuation, .trailingWhitespace, .deepseekCJK, .digitRun])
        case "deepseek-coder":
            return rules([.newline, .spaceLetters, .spacePunctuation, .deepseekCJK, .digit])
        case "deepseek-v3":
            return rules([.digitTriple, .deepseekKana, .deepseekV3])
        case "falcon":
            return rules([.falconPunctuation, .gpt2, .asciiDigitTriple])
        case "tekken":
            return rules([.tekken], ignoreMerges: true)
        default:
            return nil
        }
    }

    /// The GGUF `tokenizer.ggml.pre` values that have rules (for error messages).
    static let supportedGGUFNames = [
        "default", "gpt-2", "mpt", "olmo", "starcoder", "refact", "command-r", "smollm", "llama-bpe", "llama3", "dbrx",
        "smaug-bpe", "qwen2", "deepseek-r1-qwen", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "tekken",
    ]
}
