import Foundation

// Loaders for SentencePiece vocabularies: llama2.c `tokenizer.bin`, SentencePiece `tokenizer.model`
// and GGUF `tokenizer.ggml.model = "llama"`. (tokenizer.json lives in HuggingFaceTokenizer.swift.)

extension SentencePieceBPE {
    /// Reads a llama2.c `tokenizer.bin`: uint32 max_token_length, then per token float32 score,
    /// int32 byte length and the bytes. The file has no token count, so tokens are read until the
    /// end; pass the model's `vocabularySize` to check it. Ids 0/1/2 are unk/BOS/EOS; llama2.c
    /// writes spaces where SentencePiece has "▁", which is undone here. BOS is added by default.
    /// - Throws: `TokenizerError.truncated`/`.corrupt` for a damaged file, `.missingFile`.
    public static func llama2c(url: URL, vocabularySize: Int? = nil) throws -> SentencePieceBPE {
        let path = url.path
        let file = try openTokenizerFile(url)
        var r = ByteReader(file.bytes, context: path)
        var pieces: [String] = []
        var scores: [Float] = []
        do {
            let maxLength = try r.read(UInt32.self)
            while r.remaining > 0 {
                if let v = vocabularySize, pieces.count == v { break }
                let score = try r.readFloat()
                let length = try r.read(Int32.self)
                guard length >= 0, UInt32(length) <= max(maxLength, 64) else {
                    throw TokenizerError.corrupt(path, "token \(pieces.count) claims a length of \(length) bytes "
                        + "(the header says at most \(maxLength))")
                }
                let text = try r.readString(length: Int(length))
                pieces.append(text.replacingOccurrences(of: " ", with: "\u{2581}"))
                scores.append(score)
            }
        } catch let ModelFileError.truncated(_, needed, have) {
            throw TokenizerError.truncated(path, needed: needed, have: have)
        }
        if let v = vocabularySize, pieces.count < v {
            throw TokenizerError.corrupt(path, "holds \(pieces.count) tokens but the model's vocabulary has \(v)")
        }
        guard pieces.count >= 3 else {
            throw TokenizerError.corrupt(path, "holds \(pieces.count) tokens, fewer than the unk/BOS/EOS every llama2.c vocabulary starts with")
        }
        return try SentencePieceBPE(pieces: pieces, scores: scores, types: nil, bosTokenId: 1, eosTokenIds: [2],
                                    unknownTokenId: 0, addsBOS: true, byteFallback: true,
                                    normalization: .llama, source: path)
    }

    /// Reads a SentencePiece `tokenizer.model` (a `ModelProto` protobuf, parsed by hand): pieces with
    /// scores and types, the trainer's special ids and byte-fallback flag, and the normalizer's
    /// dummy-prefix and whitespace settings. Only BPE models with the identity normalization rule
    /// are supported (LLaMA 1/2, Mistral, llama2.c's vocabularies).
    /// - Throws: `TokenizerError` for damaged files, unigram models and precompiled normalizers.
    public static func sentencePieceModel(url: URL) throws -> SentencePieceBPE {
        let path = url.path
        let file = try openTokenizerFile(url)
        var pieces: [String] = []
        var scores: [Float] = []
        var types: [TokenType] = []
        // Protobuf defaults of TrainerSpec and NormalizerSpec.
        var modelType: UInt64 = 1
        var byteFallback = false
        var unkId: Int? = 0, bosId: Int? = 1, eosId: Int? = 2
        var normalization = SentencePieceBPE.Normalization(addDummyPrefix: true, escapeWhitespaces: true,
                                                            removeExtraWhitespaces: true)
        var ruleName = ""
        var hasCharsMap = false
        func id(_ v: UInt64) -> Int? {
            let i = Int(Int32(truncatingIfNeeded: v))
            return i >= 0 ? i : nil
        }
        do {
            var model = ProtobufReader(file.bytes, path: path)
            while let (field, value) = try model.next() {
                switch (field, value) {
                case let (1, .bytes(message)):
                    var sp = ProtobufReader(message, path: path)
                    var piece = "", score: Float = 0, type: Int32 = 1
                    while let (f, v) = try sp.next() {
                        switch (f, v) {
                        case let (1, .bytes(b)): piece = String(decoding: b, as: UTF8.self)
                        case let (2, .fixed32(bits)): score = Float(bitPattern: bits)
                        case let (3, .varint(t)): type = Int32(truncatingIfNeeded: t)
                        default: break
                        }
                    }
                    guard let t = TokenType(rawValue: type) else {
                        throw TokenizerError.corrupt(path, "piece \(pieces.count) has unknown type \(type)")
                    }
                    pieces.append(piece)
                    scores.append(score)
                    types.append(t)
                case let (2, .bytes(message)):
                    var ts = ProtobufReader(message, path: path)
                    while let (f, v) = try ts.next() {
                        guard case let .varint(x) = v else { continue }
                        switch f {
                        case 3: modelType = x
                        case 35: byteFallback = x != 0
                        case 40: unkId = id(x)
                        case 41: bosId = id(x)
                        case 42: eosId = id(x)
                        default: break
                        }
                    }
                case let (3, .bytes(message)):
                    var ns = ProtobufReader(message, path: path)
                    while let (f, v) = try ns.next() {
                        switch (f, v) {
                        case let (1, .bytes(b)): ruleName = String(decoding: b, as: UTF8.self)
                        case let (2, .bytes(b)): hasCharsMap = !b.isEmpty
                        case let (3, .varint(x)): normalization.addDummyPrefix = x != 0
                        case let (4, .varint(x)): normalization.removeExtraWhitespaces = x != 0
                        case let (5, .varint(x)): normalization.escapeWhitespaces = x != 0
                        default: break
                        }
                    }
                default: break
                }
            }
        } catch let ModelFileError.truncated(_, needed, have) {
            throw TokenizerError.truncated(path, needed: needed, have: have)
        }
        guard !pieces.isEmpty else {
            throw TokenizerError.corrupt(path, "holds no pieces; it is not a SentencePiece model")
        }
        let modelNames: [UInt64: String] = [1: "SentencePiece unigram", 2: "SentencePiece BPE", 3: "SentencePiece word", 4: "SentencePiece char"]
        guard modelType == 2 else {
            throw TokenizerError.unsupportedModel(path, found: modelNames[modelType] ?? "SentencePiece type \(modelType)",
                                                 supported: ["SentencePiece BPE"])
        }
        guard !hasCharsMap else {
            throw TokenizerError.unsupportedComponent(path, component: "SentencePiece normalization rule",
                                                      found: ruleName.isEmpty ? "precompiled" : ruleName,
                                                      supported: ["identity"])
        }
        return try SentencePieceBPE(pieces: pieces, scores: scores, types: types, bosTokenId: bosId,
                                    eosTokenIds: eosId.map { [$0] } ?? [], unknownTokenId: unkId, addsBOS: true,
                                    byteFallback: byteFallback, normalization: normalization, source: path)
    }

    /// Builds the tokenizer of a GGUF file whose `tokenizer.ggml.model` is `llama`.
    /// - Throws: `TokenizerError.missingField`/`.corrupt` when the metadata is incomplete.
    public static func gguf(_ file: GGUFFile) throws -> SentencePieceBPE {
        let path = file.path
        let m = file.metadata
        let pieces = try ggufStrings(m, "tokenizer.ggml.tokens", path)
        let n = pieces.count
        var scores = [Float](repeating: 0, count: n)
        if let a = m["tokenizer.ggml.scores"]?.arrayValue {
            guard a.count == n else { throw TokenizerError.corrupt(path, "\(n) tokens but \(a.count) scores") }
            for (i, v) in a.enumerated() {
                guard let d = v.doubleValue else { throw TokenizerError.corrupt(path, "score \(i) is not a number") }
                scores[i] = Float(d)
            }
        }
        let types = try ggufTypes(m, n, path)
        var ids = try ggufSpecialIds(m, n, path)
        // llama.cpp's defaults for SentencePiece vocabularies whose converter wrote no ids
        // (unk 0, BOS 1, EOS 2), so such files tokenize as llama.cpp tokenizes them.
        if m["tokenizer.ggml.bos_token_id"] == nil && n > 1 { ids.bos = 1 }
        if m["tokenizer.ggml.eos_token_id"] == nil && n > 2 { ids.eos.insert(2) }
        let normalization = SentencePieceBPE.Normalization(
            addDummyPrefix: m["tokenizer.ggml.add_space_prefix"]?.boolValue ?? true,
            escapeWhitespaces: true,
            removeExtraWhitespaces: m["tokenizer.ggml.remove_extra_whitespaces"]?.boolValue ?? false)
        return try SentencePieceBPE(pieces: pieces, scores: scores, types: types, bosTokenId: ids.bos,
                                    eosTokenIds: ids.eos, unknownTokenId: ids.unk ?? 0,
                                    addsBOS: m["tokenizer.ggml.add_bos_token"]?.boolValue ?? true,
                                    byteFallback: true, normalization: normalization, source: path)
    }
}

/// Maps a tokenizer file, turning "no such file" into `TokenizerError.missingFile`.
func openTokenizerFile(_ url: URL) throws -> MappedFile {
    guard FileManager.default.fileExists(atPath: url.path) else { throw TokenizerError.missingFile(url.path) }
    return try MappedFile(url: url)
}

func ggufStrings(_ m: [String: GGUFValue], _ key: String, _ path: String) throws -> [String] {
    guard let a = m[key]?.arrayValue else { throw TokenizerError.missingField(path, key) }
    return try a.enumerated().map { i, v in
        guard let s = v.stringValue else { throw TokenizerError.corrupt(path, "\(key)[\(i)] is not a string") }
        return s
    }
}

func ggufTypes(_ m: [String: GGUFValue], _ n: Int, _ path: String) throws -> [TokenType]? {
    guard let a = m["tokenizer.ggml.token_type"]?.arrayValue else { return nil }
    guard a.count == n else { throw TokenizerError.corrupt(path, "\(n) tokens but \(a.count) token types") }
    return try a.enumerated().map { i, v in
        // llama.cpp treats type 0 (undefined) as normal.
        guard let raw = v.intValue, let t = raw == 0 ? .normal : TokenType(rawValue: Int32(clamping: raw)) else {
            throw TokenizerError.corrupt(path, "token \(i) has unknown type \(String(describing: v))")
        }
        return t
    }
}

/// BOS, end-of-generation ids (EOS, EOT, EOM) and unk from GGUF metadata, range-checked.
func ggufSpecialIds(_ m: [String: GGUFValue], _ n: Int, _ path: String) throws -> (bos: Int?, eos: Set<Int>, unk: Int?) {
    func id(_ key: String) throws -> Int? {
        guard let v = m[key] else { return nil }
        guard let i = v.intValue else { throw TokenizerError.corrupt(path, "\(key) is not an integer") }
        // Some converters write -1 (as uint32 0xFFFFFFFF) for "none".
        if i < 0 || i == Int(UInt32.max) { return nil }
        guard i < n else { throw TokenizerError.corrupt(path, "\(key) = \(i) is outside the vocabulary of \(n)") }
        return i
    }
    var eos = Set<Int>()
    for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let i = try id(key) { eos.insert(i) }
    }
    return (try id("tokenizer.ggml.bos_token_id"), eos, try id("tokenizer.ggml.unknown_token_id"))
}

/// A minimal protobuf wire-format reader: enough to walk SentencePiece's `ModelProto`.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(UnsafeRawBufferPointer)
    }

    private var r: ByteReader
    private let path: String

    init(_ bytes: UnsafeRawBufferPointer, path: String) {
        r = ByteReader(bytes, context: path)
        self.path = path
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try r.read(UInt8.self)
            guard shift < 64 else { throw TokenizerError.corrupt(path, "a protobuf varint is longer than 10 bytes") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    /// The next field number and value, or nil at the end of the message.
    mutating func next() throws -> (Int, Value)? {
        guard r.remaining > 0 else { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try r.read(UInt64.self)))
        case 5: return (field, .fixed32(try r.read(UInt32.self)))
        case 2:
            let n = try varint()
            guard n <= UInt64(r.remaining) else {
                throw ModelFileError.truncated(path, needed: r.offset + Int(clamping: n), have: r.bytes.count)
            }
            return (field, .bytes(try r.readBytes(Int(n))))
        default:
            throw TokenizerError.corrupt(path, "protobuf wire type \(key & 7) at byte \(r.offset) is not valid here")
        }
    }
}
