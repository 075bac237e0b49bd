import Foundation

extension ByteLevelBPE {
    /// Builds the tokenizer of a GGUF file whose `tokenizer.ggml.model` is `gpt2`: tokens, token
    /// types, `tokenizer.ggml.merges` ("a b" strings in rank order) and the pre-tokenizer named by
    /// `tokenizer.ggml.pre`. BOS is added only when `tokenizer.ggml.add_bos_token` says so.
    /// - Throws: `TokenizerError` for missing or inconsistent metadata and unknown pre-tokenizers.
    public static func gguf(_ file: GGUFFile) throws -> ByteLevelBPE {
        let path = file.path
        let m = file.metadata
        let tokens = try ggufStrings(m, "tokenizer.ggml.tokens", path)
        let mergeLines = try ggufStrings(m, "tokenizer.ggml.merges", path)
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeLines.count)
        for (i, line) in mergeLines.enumerated() {
            // llama.cpp splits at the first space after the first character.
            guard let space = line.unicodeScalars.dropFirst().firstIndex(of: " ") else {
                throw TokenizerError.corrupt(path, "merge \(i) ('\(line)') is not two tokens separated by a space")
            }
            merges.append((String(line.unicodeScalars[..<space]),
                           String(line.unicodeScalars[line.unicodeScalars.index(after: space)...])))
        }
        let pre = m["tokenizer.ggml.pre"]?.stringValue ?? "default"
        guard let rules = PreTokenizer.gguf(pre: pre) else {
            throw TokenizerError.unsupportedComponent(path, component: "pre-tokenizer (tokenizer.ggml.pre)", found: pre,
                                                      supported: PreTokenizer.supportedGGUFNames)
        }
        let ids = try ggufSpecialIds(m, tokens.count, path)
        return try ByteLevelBPE(tokens: tokens, types: try ggufTypes(m, tokens.count, path), merges: merges,
                                preTokenizer: rules.preTokenizer, addPrefixSpace: m["tokenizer.ggml.add_space_prefix"]?.boolValue ?? false,
                                ignoreMerges: rules.ignoreMerges, normalizesNFC: false,
                                bosTokenId: ids.bos, eosTokenIds: ids.eos, unknownTokenId: ids.unk,
                                addsBOS: m["tokenizer.ggml.add_bos_token"]?.boolValue ?? false, source: path)
    }
}
