/// Added and special tokens are matched in the raw text before anything else, the way Hugging
/// Face's `AddedVocabulary` and llama.cpp's `tokenizer_st_partition` do; the text between them is
/// normalized and tokenized on its own.
/// Splits `bytes` at occurrences of `tokens` (leftmost match, longest first when several start at
/// the same byte, as Hugging Face's added-token matcher does) and calls `body` in order with each
/// non-empty text segment (id nil) and each matched token (its bytes and id).
func forEachSegment(_ bytes: [UInt8], splittingAt tokens: [(bytes: [UInt8], id: Int32)],
                    _ body: (ArraySlice<UInt8>, Int32?) -> Void) {
    var segmentStart = 0
    var i = 0
    if !tokens.isEmpty {
        while i < bytes.count {
            let b = bytes[i]
            var matched: (bytes: [UInt8], id: Int32)?
            for t in tokens where t.bytes[0] == b && t.bytes.count <= bytes.count - i
                && bytes[i..<(i + t.bytes.count)].elementsEqual(t.bytes) {
                matched = t
                break
            }
            guard let (token, id) = matched else {
                i += 1
                continue
            }
            if segmentStart < i { body(bytes[segmentStart..<i], nil) }
            body(bytes[i..<(i + token.count)], id)
            i += token.count
            segmentStart = i
        }
    }
    if segmentStart < bytes.count { body(bytes[segmentStart...], nil) }
}
