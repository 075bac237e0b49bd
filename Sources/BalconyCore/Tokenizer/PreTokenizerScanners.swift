/// The scanners behind `PreTokenizerPattern`: each returns the end of the match of its regex that
/// starts at `i` (alternatives tried in the regex's order, with its backtracking), or nil.
/// `s` and `c` hold one piece of text; its end is the end of the text for `(?!\S)` and `$`.
enum PreTokenizerScanners {
    typealias Scalars = UnsafeBufferPointer<Unicode.Scalar>
    typealias Classes = UnsafeBufferPointer<CharClass>

    private static let apostrophe: Unicode.Scalar = "'"
    private static let space: Unicode.Scalar = " "

    /// The end of the run of characters with any of `mask` from `i`; nil for an empty run.
    @inline(__always)
    static func run(_ c: Classes, _ i: Int, _ mask: UInt16) -> Int? {
        var j = i
        while j < c.count && c[j].has(mask) { j += 1 }
        return j > i ? j : nil
    }

    @inline(__always)
    static func runWhile(_ c: Classes, from i: Int, _ test: (CharClass) -> Bool) -> Int {
        var j = i
        while j < c.count && test(c[j]) { j += 1 }
        return j
    }

    /// `\s?X+` for a class: the optional whitespace is taken when X follows it, else given back.
    @inline(__always)
    static func spaceThenClass(_ c: Classes, _ i: Int, _ mask: UInt16) -> Int? {
        if c[i].isWhitespace, i + 1 < c.count, let end = run(c, i + 1, mask) { return end }
        return run(c, i, mask)
    }

    /// `\s?[...]+` for a set of scalars.
    @inline(__always)
    static func spaceThenRun(_ s: Scalars, _ c: Classes, _ i: Int, _ member: (Unicode.Scalar) -> Bool) -> Int? {
        func runFrom(_ k: Int) -> Int? {
            var j = k
            while j < s.count && member(s[j]) { j += 1 }
            return j > k ? j : nil
        }
        if c[i].isWhitespace, i + 1 < s.count, let end = runFrom(i + 1) { return end }
        return runFrom(i)
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive or (LLaMA 3) case-insensitive; returns the end or nil.
    @inline(__always)
    static func contraction(_ s: Scalars, _ i: Int, ignoreCase: Bool) -> Int? {
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

    /// `\s+(?!\S)|\s+` at a whitespace character: the whole run if it ends the text or is one
    /// character long, else the run minus its last character (which then leads the next word).
    @inline(__always)
    static func whitespaceRun(_ c: Classes, _ i: Int) -> Int {
        let end = runWhile(c, from: i) { $0.isWhitespace }
        return (end == c.count || end - i == 1) ? end : end - 1
    }

    /// `\s*[\r\n]+|\s+(?!\S)|\s+`, the tail LLaMA 3, Qwen2, DeepSeek V3 and Tekken share; nil when
    /// `i` is not whitespace.
    @inline(__always)
    static func newlineOrWhitespace(_ c: Classes, _ i: Int) -> Int? {
        guard c[i].isWhitespace else { return nil }
        // `\s*[\r\n]+`: through the last newline of the whitespace run starting here.
        let end = runWhile(c, from: i) { $0.isWhitespace }
        var j = end - 1
        while j >= i && !c[j].isNewline { j -= 1 }
        if j >= i { return j + 1 }
        return whitespaceRun(c, i)
    }

    static func gpt2(_ s: Scalars, _ c: Classes, _ i: Int) -> Int? {
        if let end = contraction(s, i, ignoreCase: false) { return end }
        // ` ?X+`: the optional space is taken when something of class X follows it.
        let k = (s[i] == space && i + 1 < s.count) ? i + 1 : i
        if c[k].isLetter { return runWhile(c, from: k) { $0.isLetter } }
        if c[k].isNumber { return runWhile(c, from: k) { $0.isNumber } }
        if c[k].isOther { return runWhile(c, from: k) { $0.isOther } }
        return whitespaceRun(c, i)
    }

    static func llama3(_ s: Scalars, _ c: Classes, _ i: Int, maxDigits: Int) -> Int? {
        if let end = contraction(s, i, ignoreCase: true) { return end }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !c[i].isNewline && !c[i].isLetter && !c[i].isNumber && i + 1 < s.count && c[i + 1].isLetter {
            return runWhile(c, from: i + 1) { $0.isLetter }
        }
        if c[i].isLetter { return runWhile(c, from: i) { $0.isLetter } }
        // `\p{N}{1,maxDigits}`
        if c[i].isNumber { return min(runWhile(c, from: i) { $0.isNumber }, i + maxDigits) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let k = (s[i] == space && i + 1 < s.count) ? i + 1 : i
        if c[k].isOther {
            let end = runWhile(c, from: k) { $0.isOther }
            return runWhile(c, from: end) { $0.isNewline }
        }
        return newlineOrWhitespace(c, i)
    }

    /// `[\p{P}\$\+<=>\^~\|`]+`: punctuation and the ASCII symbols listed (not other symbols).
    static func falconPunctuation(_ s: Scalars, _ c: Classes, _ i: Int) -> Int? {
        var j = i
        while j < s.count && (c[j].has(CharClass.punctuation) || "$+<=>^~|`".unicodeScalars.contains(s[j])) { j += 1 }
        return j > i ? j : nil
    }

    /// DeepSeek V3:
    /// `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|`
    /// ` ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    static func deepseekV3(_ s: Scalars, _ c: Classes, _ i: Int) -> Int? {
        func asciiLetter(_ k: Int) -> Bool {
            k < s.count && ((0x41...0x5A).contains(s[k].value) || (0x61...0x7A).contains(s[k].value))
        }
        let v = s[i].value
        let asciiPunct = (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v)
            || (0x7B...0x7E).contains(v)
        if asciiPunct && asciiLetter(i + 1) { return asciiRun(s, i + 1) }
        let letterOrMark = CharClass.letter | CharClass.mark
        let punctOrSymbol = CharClass.punctuation | CharClass.symbol
        // `[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+`
        if !c[i].isNewline && !c[i].has(CharClass.letter | punctOrSymbol) && i + 1 < s.count && c[i + 1].has(letterOrMark) {
            return run(c, i + 1, letterOrMark)
        }
        if let end = run(c, i, letterOrMark) { return end }
        // ` ?[\p{P}\p{S}]+[\r\n]*`
        let k = (s[i] == space && i + 1 < s.count) ? i + 1 : i
        if let end = run(c, k, punctOrSymbol) { return runWhile(c, from: end) { $0.isNewline } }
        return newlineOrWhitespace(c, i)
    }

    private static func asciiRun(_ s: Scalars, _ i: Int) -> Int {
        var j = i
        while j < s.count && ((0x41...0x5A).contains(s[j].value) || (0x61...0x7A).contains(s[j].value)) { j += 1 }
        return j
    }

    /// Tekken (Mistral NeMo), its `tokenizer.json` regex:
    /// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|`
    /// `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|`
    /// `\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// (llama.cpp approximates the letter classes for its `std::regex`; this is the original.)
    static func tekken(_ s: Scalars, _ c: Classes, _ i: Int) -> Int? {
        // "Upper-ish" U = Lu Lt Lm Lo M, "lower-ish" W = Ll Lm Lo M.
        func isU(_ k: Int) -> Bool { c[k].has(CharClass.mark) || (c[k].isLetter && !c[k].has(CharClass.lower)) }
        func isW(_ k: Int) -> Bool { c[k].has(CharClass.mark) || (c[k].isLetter && !c[k].has(CharClass.upper)) }
        func runOf(_ k: Int, _ test: (Int) -> Bool) -> Int {
            var j = k
            while j < s.count && test(j) { j += 1 }
            return j
        }
        // `U*W+` from p: U* greedy, then backtracking to the last position where W+ can start.
        func upperThenLower(_ p: Int) -> Int? {
            guard p < s.count else { return nil }
            var k = runOf(p, isU)
            while k >= p {
                if k < s.count && isW(k) { return runOf(k, isW) }
                k -= 1
            }
            return nil
        }
        // `U+W*`
        func upperRun(_ p: Int) -> Int? {
            guard p < s.count else { return nil }
            let u = runOf(p, isU)
            return u > p ? runOf(u, isW) : nil
        }
        let prefix = !c[i].isNewline && !c[i].isLetter && !c[i].isNumber
        if prefix, let end = upperThenLower(i + 1) { return end }
        if let end = upperThenLower(i) { return end }
        if prefix, let end = upperRun(i + 1) { return end }
        if let end = upperRun(i) { return end }
        if c[i].isNumber { return i + 1 }
        // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
        let k = (s[i] == space && i + 1 < s.count) ? i + 1 : i
        if c[k].isOther {
            let end = runWhile(c, from: k) { $0.isOther }
            var j = end
            while j < s.count && (c[j].isNewline || s[j] == "/") { j += 1 }
            return j
        }
        return newlineOrWhitespace(c, i)
    }

    // MARK: - DeepSeek LLM's explicit classes

    static func isDeepseekPunctuation(_ x: Unicode.Scalar) -> Bool {
        let v = x.value
        return (0x21...0x2F).contains(v) || (0x3A...0x7E).contains(v) || (0xFF01...0xFF0F).contains(v)
            || (0xFF1A...0xFF5E).contains(v) || (0x2018...0x201F).contains(v) || (0x3000...0x3002).contains(v)
    }

    static func isDeepseekLetter(_ x: Unicode.Scalar) -> Bool {
        let v = x.value
        if v < 0x80 { return (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) }
        // Binary search over the sorted, disjoint ranges.
        var lo = 0, hi = deepseekLetterRanges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let r = deepseekLetterRanges[mid]
            if v < r.0 { hi = mid } else if v > r.1 { lo = mid + 1 } else { return true }
        }
        return false
    }

    /// The ranges of DeepSeek LLM's letter class (`[A-Za-zµÀ-Ö...]` in llama.cpp's regex), in order,
    /// single characters as ranges of one (so that the regex text can be rebuilt exactly).
    static let deepseekLetterRanges: [(UInt32, UInt32)] = [
        (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
        (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x376), (0x377, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
        (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
        (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
        (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
        (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D),
        (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
        (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102),
        (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
        (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
        (0x214E, 0x214E), (0x2183, 0x2183), (0x2184, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF2), (0x2CF3, 0x2CF3),
        (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
        (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F),
        (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF),
        (0x1E900, 0x1E943),
    ]
}
