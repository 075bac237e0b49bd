import Foundation

/// Reads Hugging Face `tokenizer.json` files (with `tokenizer_config.json` and
/// `generation_config.json` beside them) into a `SentencePieceBPE` or `ByteLevelBPE`.
///
/// The JSON tree is parsed once with `JSONSerialization` and converted straight into flat typed
/// tables; nothing untyped outlives `load`. Every component the file names must be one Balcony
/// implements exactly, otherwise loading fails and says which one: silently ignoring a normalizer
/// would give wrong ids without any sign.
///
/// - A `ByteLevel` pre-tokenizer or decoder makes a `ByteLevelBPE` (pre-tokenizer `ByteLevel` with
///   `use_regex`, `Digits`, or `Split` with one of the `PreTokenizerPattern` regexes, behavior
///   `Isolated`, alone or in a `Sequence`; normalizer none or `NFC`; `ignore_merges` honoured).
/// - Otherwise a BPE with `byte_fallback` or a "▁" normalizer/pre-tokenizer makes a
///   `SentencePieceBPE` that merges by rank (normalizer `Prepend("▁")` + `Replace(" ", "▁")`, or
///   pre-tokenizer `Metaspace` with `split: false`).
/// - Special ids: `tokenizer_config.json`'s `bos_token`/`eos_token`, `generation_config.json`'s
///   `eos_token_id` (an int or a list) and `bos_token_id`. BOS is added when `add_bos_token` says
///   so, else when the `TemplateProcessing` post-processor starts with a special token (LLaMA 3),
///   else not, which is what `tokenizers` itself does.
/// - `added_tokens` marked `special` are control tokens (parsed only by
///   `encode(_:parseSpecial:)`); the others are matched in the text like Hugging Face does. Their
///   `lstrip`/`rstrip`/`single_word` flags are not implemented.
public enum HuggingFaceTokenizer {
    /// Loads `tokenizer.json` at `url`.
    /// - Throws: `TokenizerError` for malformed JSON, non-BPE models and unsupported components.
    public static func load(url: URL) throws -> any Tokenizer {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else { throw TokenizerError.missingFile(path) }
        let root = try object(data, path)
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError.missingField(path, "model") }
        let type = (model["type"] as? String) ?? (model["merges"] != nil ? "BPE" : "unknown")
        guard type == "BPE" else {
            throw TokenizerError.unsupportedModel(path, found: type,
                                                 supported: ["BPE (byte-level, GPT-2/LLaMA 3/Qwen2 style)",
                                                             "BPE with byte_fallback (SentencePiece/LLaMA 2 style)"])
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key] as? String, !s.isEmpty {
                throw TokenizerError.unsupportedComponent(path, component: "BPE option \(key)", found: s, supported: ["none"])
            }
        }
        if let d = model["dropout"] as? Double, d > 0 {
            throw TokenizerError.unsupportedComponent(path, component: "BPE dropout", found: "\(d)", supported: ["none"])
        }

        // Vocabulary: model.vocab plus added_tokens, by id.
        guard let vocab = model["vocab"] as? [String: Any] else { throw TokenizerError.missingField(path, "model.vocab") }
        var byId: [Int: (String, TokenType)] = [:]
        for (piece, value) in vocab {
            guard let id = value as? Int, id >= 0 else {
                throw TokenizerError.corrupt(path, "model.vocab entry '\(piece)' has no valid id")
            }
            byId[id] = (piece, .normal)
        }
        let added = (root["added_tokens"] as? [[String: Any]]) ?? []
        for (i, token) in added.enumerated() {
            guard let id = token["id"] as? Int, id >= 0, let content = token["content"] as? String else {
                throw TokenizerError.corrupt(path, "added_tokens[\(i)] lacks an id or content")
            }
            byId[id] = (content, (token["special"] as? Bool ?? false) ? .control : .userDefined)
        }
        guard let maxId = byId.keys.max() else { throw TokenizerError.corrupt(path, "the vocabulary is empty") }
        guard maxId < byId.count * 2 + 1024 else {
            throw TokenizerError.corrupt(path, "token id \(maxId) is far beyond the \(byId.count) tokens defined")
        }
        var tokens = [String](repeating: "", count: maxId + 1)
        var types = [TokenType](repeating: .unused, count: maxId + 1)
        for (id, (piece, type)) in byId {
            tokens[id] = piece
            types[id] = type
        }

        let merges = try mergePairs(model["merges"], path)
        let normalizers = components(root["normalizer"])
        let preTokenizers = components(root["pre_tokenizer"])
        let config = try SpecialTokenConfig(directory: url.deletingLastPathComponent(),
                                            postProcessor: root["post_processor"] as? [String: Any])
        let isByteLevel = preTokenizers.contains { $0["type"] as? String == "ByteLevel" }
            || (root["decoder"] as? [String: Any])?["type"] as? String == "ByteLevel"
        if isByteLevel {
            return try byteLevel(path: path, model: model, tokens: tokens, types: types, merges: merges,
                                 normalizers: normalizers, preTokenizers: preTokenizers, config: config)
        }
        return try sentencePiece(path: path, model: model, tokens: tokens, types: types, merges: merges,
                                 normalizers: normalizers, preTokenizers: preTokenizers, config: config)
    }

    // MARK: - The two families

    private static func byteLevel(path: String, model: [String: Any], tokens: [String], types: [TokenType],
                                  merges: [(String, String)], normalizers: [[String: Any]],
                                  preTokenizers: [[String: Any]], config: SpecialTokenConfig) throws -> ByteLevelBPE {
        var nfc = false
        for n in normalizers {
            let type = n["type"] as? String ?? "?"
            guard type == "NFC" else {
                throw TokenizerError.unsupportedComponent(path, component: "normalizer", found: type, supported: ["NFC"])
            }
            nfc = true
        }
        // Each component adds its split to the sequence, in order (SmolLM: Digits, then ByteLevel's regex).
        var stages: [PreTokenizerPattern] = []
        var prefixSpace = false
        for p in preTokenizers {
            switch p["type"] as? String {
            case "ByteLevel":
                prefixSpace = p["add_prefix_space"] as? Bool ?? false
                if p["use_regex"] as? Bool ?? true { stages.append(.gpt2) }
            case "Digits":
                stages.append(p["individual_digits"] as? Bool ?? false ? .digit : .digitRun)
            case "Split":
                let regex = (p["pattern"] as? [String: Any])?["Regex"] as? String ?? ""
                let behavior = (p["behavior"] as? String ?? "").lowercased()
                guard let known = PreTokenizerPattern(regex: regex), behavior == "isolated", !(p["invert"] as? Bool ?? false) else {
                    throw TokenizerError.unsupportedComponent(
                        path, component: "Split pre-tokenizer", found: regex.isEmpty ? "a string pattern" : regex,
                        supported: PreTokenizerPattern.allCases.map { "\($0) regex (behavior Isolated)" })
                }
                stages.append(known)
            default:
                throw TokenizerError.unsupportedComponent(path, component: "pre-tokenizer", found: p["type"] as? String ?? "?",
                                                          supported: ["ByteLevel", "Split", "Digits", "Sequence of them"])
            }
        }
        let ids = config.resolve(tokens: tokens, bosNames: ["<|begin_of_text|>", "<|startoftext|>"],
                                 eosNames: ["<|endoftext|>", "<|end_of_text|>"])
        return try ByteLevelBPE(tokens: tokens, types: types, merges: merges, preTokenizer: stages.isEmpty ? nil : PreTokenizer(stages), addPrefixSpace: prefixSpace,
                                ignoreMerges: model["ignore_merges"] as? Bool ?? false, normalizesNFC: nfc,
                                bosTokenId: ids.bos, eosTokenIds: ids.eos,
                                unknownTokenId: (model["unk_token"] as? String).flatMap { tokens.firstIndex(of: $0) },
                                addsBOS: config.addsBOS ?? false, source: path)
    }

    private static func sentencePiece(path: String, model: [String: Any], tokens: [String], types: [TokenType],
                                      merges: [(String, String)], normalizers: [[String: Any]],
                                      preTokenizers: [[String: Any]], config: SpecialTokenConfig) throws -> SentencePieceBPE {
        let space = "\u{2581}"
        var normalization = SentencePieceBPE.Normalization(addDummyPrefix: false, escapeWhitespaces: false)
        let supportedNormalizers = ["Prepend(\"▁\")", "Replace(\" \", \"▁\")"]
        for n in normalizers {
            switch n["type"] as? String {
            case "Prepend" where n["prepend"] as? String == space:
                // Prepend comes first in LLaMA 2's sequence, so it sees the unescaped text.
                normalization.addDummyPrefix = true
            case "Replace" where (n["pattern"] as? [String: Any])?["String"] as? String == " " && n["content"] as? String == space:
                normalization.escapeWhitespaces = true
            default:
                throw TokenizerError.unsupportedComponent(path, component: "normalizer", found: describe(n),
                                                          supported: supportedNormalizers)
            }
        }
        for p in preTokenizers {
            guard p["type"] as? String == "Metaspace", (p["replacement"] as? String ?? space) == space,
                  !(p["split"] as? Bool ?? true) else {
                throw TokenizerError.unsupportedComponent(path, component: "pre-tokenizer", found: describe(p),
                                                          supported: ["Metaspace(replacement \"▁\", split false)"])
            }
            normalization.escapeWhitespaces = true
            let scheme = p["prepend_scheme"] as? String ?? ((p["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            if scheme != "never" {
                normalization.addDummyPrefix = true
                normalization.dummyPrefixOnlyIfAbsent = true
                normalization.dummyPrefixOnFirstSegmentOnly = scheme == "first"
            }
        }
        let byteFallback = model["byte_fallback"] as? Bool ?? false
        guard byteFallback || normalization.escapeWhitespaces else {
            throw TokenizerError.unsupportedModel(path, found: "BPE without ByteLevel, byte_fallback or Metaspace",
                                                 supported: ["BPE (byte-level, GPT-2/LLaMA 3/Qwen2 style)",
                                                             "BPE with byte_fallback (SentencePiece/LLaMA 2 style)"])
        }
        var types = types
        if byteFallback {
            for (i, t) in tokens.enumerated() where types[i] == .normal && SentencePieceBPE.byteValue(t) != nil {
                types[i] = .byte
            }
        }
        let unk = (model["unk_token"] as? String).flatMap { tokens.firstIndex(of: $0) }
        if let unk { types[unk] = .unknown }
        var idOf: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where idOf[t] == nil { idOf[t] = Int32(i) }
        let pairs = try merges.enumerated().map { rank, m -> (Int32, Int32) in
            guard let a = idOf[m.0], let b = idOf[m.1] else {
                throw TokenizerError.corrupt(path, "merge \(rank) ('\(m.0) \(m.1)') names a token that is not in the vocabulary")
            }
            return (a, b)
        }
        let ids = config.resolve(tokens: tokens, bosNames: ["<s>"], eosNames: ["</s>"])
        return try SentencePieceBPE(pieces: tokens, scores: [Float](repeating: 0, count: tokens.count), types: types,
                                    merges: pairs, bosTokenId: ids.bos, eosTokenIds: ids.eos, unknownTokenId: unk,
                                    addsBOS: config.addsBOS ?? false, byteFallback: byteFallback,
                                    normalization: normalization, source: path)
    }

    // MARK: - JSON helpers

    static func object(_ data: Data, _ path: String) throws -> [String: Any] {
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.corrupt(path, "it is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = value as? [String: Any] else { throw TokenizerError.corrupt(path, "its top level is not a JSON object") }
        return object
    }

    /// A normalizer or pre-tokenizer as a flat list (a `Sequence` expanded, null as empty).
    private static func components(_ value: Any?) -> [[String: Any]] {
        guard let c = value as? [String: Any] else { return [] }
        if c["type"] as? String == "Sequence" {
            let inner = (c["normalizers"] ?? c["pretokenizers"]) as? [Any] ?? []
            return inner.flatMap { components($0) }
        }
        return [c]
    }

    private static func describe(_ c: [String: Any]) -> String {
        let type = c["type"] as? String ?? "?"
        let details = c.filter { $0.key != "type" }.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        return details.isEmpty ? type : "\(type)(\(details.joined(separator: ", ")))"
    }

    /// `model.merges`: "a b" strings (split at the first space after the first character), or
    /// `[a, b]` pairs (the newer format, which allows spaces inside tokens).
    private static func mergePairs(_ value: Any?, _ path: String) throws -> [(String, String)] {
        guard let list = value as? [Any] else {
            if value == nil || value is NSNull { return [] }
            throw TokenizerError.corrupt(path, "model.merges is not a list")
        }
        return try list.enumerated().map { i, m in
            if let pair = m as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            if let line = m as? String {
                let scalars = line.unicodeScalars
                if !scalars.isEmpty, let space = scalars.dropFirst().firstIndex(of: " ") {
                    return (String(scalars[..<space]), String(scalars[scalars.index(after: space)...]))
                }
            }
            throw TokenizerError.corrupt(path, "model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
        }
    }
}

/// BOS/EOS settings from `tokenizer_config.json`, `generation_config.json` and the post-processor.
struct SpecialTokenConfig {
    var addsBOS: Bool?
    var bosName: String?
    var eosNames: [String] = []
    var bosId: Int?
    var eosIds: [Int] = []

    init(directory: URL, postProcessor: [String: Any]?) throws {
        func tokenName(_ v: Any?) -> String? {
            if let s = v as? String { return s }
            return (v as? [String: Any])?["content"] as? String
        }
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        if let data = FileManager.default.contents(atPath: configURL.path) {
            let c = try HuggingFaceTokenizer.object(data, configURL.path)
            addsBOS = c["add_bos_token"] as? Bool
            bosName = tokenName(c["bos_token"])
            if let e = tokenName(c["eos_token"]) { eosNames.append(e) }
        }
        let generationURL = directory.appendingPathComponent("generation_config.json")
        if let data = FileManager.default.contents(atPath: generationURL.path) {
            let g = try HuggingFaceTokenizer.object(data, generationURL.path)
            if let e = g["eos_token_id"] as? Int { eosIds.append(e) }
            if let e = g["eos_token_id"] as? [Int] { eosIds += e }
            bosId = g["bos_token_id"] as? Int
        }
        // LLaMA 3 has no add_bos_token: its TemplateProcessing post-processor puts BOS first.
        if addsBOS == nil, let p = postProcessor, p["type"] as? String == "TemplateProcessing",
           let single = p["single"] as? [[String: Any]] {
            if let first = single.first?["SpecialToken"] as? [String: Any], let name = first["id"] as? String {
                addsBOS = true
                bosName = bosName ?? name
            } else {
                addsBOS = false
            }
        }
    }

    /// Ids by name; without any configuration, the conventional names.
    func resolve(tokens: [String], bosNames: [String], eosNames fallbackEos: [String]) -> (bos: Int?, eos: Set<Int>) {
        func id(_ name: String) -> Int? { tokens.firstIndex(of: name) }
        let bos = bosName.flatMap(id) ?? bosId.flatMap { tokens.indices.contains($0) ? $0 : nil }
            ?? bosNames.lazy.compactMap(id).first
        var eos = Set(eosNames.compactMap(id) + eosIds.filter { tokens.indices.contains($0) })
        if eos.isEmpty { eos = Set(fallbackEos.lazy.compactMap(id).prefix(1)) }
        return (bos, eos)
    }
}
