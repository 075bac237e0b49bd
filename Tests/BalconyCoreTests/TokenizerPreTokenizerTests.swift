import Foundation
import Testing
@testable import BalconyCore

/// One split of `pretokenizer_splits.json`, made by `tokenizers`' `Split` with the same regex.
struct SplitCase: CustomTestStringConvertible, Sendable {
    let pattern: PreTokenizerPattern
    let text: String
    let words: [String]
    var testDescription: String { "\(pattern) \(text.debugDescription)" }

    static let all: [SplitCase] = {
        guard let data = try? Data(contentsOf: TokenizerAssets.fixture("pretokenizer_splits.json")),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.compactMap { e in
            guard let name = e["pattern"] as? String, let p = PreTokenizerPattern(rawValue: name),
                  let text = e["text"] as? String, let words = e["words"] as? [String] else { return nil }
            return SplitCase(pattern: p, text: text, words: words)
        }
    }()
}

@Suite struct TokenizerPreTokenizerTests {
    @Test func casesArePresent() {
        #expect(SplitCase.all.count == 54)
    }

    /// The hand-written scanners split exactly like the Oniguruma regexes of `tokenizers`.
    @Test(arguments: SplitCase.all)
    func splitsLikeReference(_ c: SplitCase) {
        let scalars = Array(c.text.unicodeScalars)
        var words: [String] = []
        var start = 0
        for end in c.pattern.split(scalars) {
            var w = String.UnicodeScalarView()
            w.append(contentsOf: scalars[start..<end])
            words.append(String(w))
            start = end
        }
        #expect(words == c.words)
    }

    @Test func patternsAreRecognisedByTheirRegex() {
        for p in PreTokenizerPattern.allCases {
            #expect(PreTokenizerPattern(regex: p.regex) == p)
        }
        #expect(PreTokenizerPattern(regex: #"\w+"#) == nil)
    }

    @Test func byteToUnicodeIsGPT2Table() {
        // Spot values of GPT-2's bytes_to_unicode: space -> Ġ, newline -> Ċ, "!" itself, 0xAD -> Ń.
        #expect(ByteLevelBPE.byteToUnicode[0x20] == "\u{0120}")
        #expect(ByteLevelBPE.byteToUnicode[0x0A] == "\u{010A}")
        #expect(ByteLevelBPE.byteToUnicode[0x21] == "!")
        #expect(ByteLevelBPE.byteToUnicode[0xAD] == "\u{0143}")
        #expect(Set(ByteLevelBPE.byteToUnicode).count == 256)
    }
}
