import Foundation
import Testing
@testable import BalconyCore

/// Paths and expected values of the fixtures written by scripts/make_model_fixtures.py.
enum ModelFixtures {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let root = testsDirectory.appendingPathComponent("Fixtures")
    static let models = root.appendingPathComponent("models")
    static let packageRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let shared = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")

    static func model(_ name: String) -> URL { models.appendingPathComponent(name) }

    /// expected.json of one fixture model.
    struct Expected: Decodable {
        var tokens: [Int]
        var logprobs: [String: [Double]]
        var config: Config
        var sensitivity: [String: Double]
        var float32ReferenceError: [String: Double]

        struct Config: Decodable {
            var architecture: String
            var dim, hiddenDim, layers, heads, kvHeads, headDim, vocab, context: Int
            var normEps: Double
            var ropeTheta: Double
            var tied: Bool
            var ropeFreqs: [Double]?
            var invFreq: [Double]?

            enum CodingKeys: String, CodingKey {
                case architecture, dim, layers, heads, vocab, context, tied
                case hiddenDim = "hidden_dim", kvHeads = "kv_heads", headDim = "head_dim", normEps = "norm_eps"
                case ropeTheta = "rope_theta", ropeFreqs = "rope_freqs", invFreq = "inv_freq"
            }
        }

        enum CodingKeys: String, CodingKey {
            case tokens, logprobs, config, sensitivity
            case float32ReferenceError = "float32_reference_error"
        }
    }

    static func expected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: model(name).appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    /// Per-token log-probabilities of the fixture's tokens under `weights`, by the forward pass.
    static func logProbabilities(_ weights: ModelWeights, tokens: [Int]) throws -> [Double] {
        let model = try LlamaModel(weights: weights, threads: 1)
        return try model.tokenLogProbabilities(tokens: tokens).map(Double.init)
    }

    static func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// Checks `config` against the dimensions in expected.json.
    static func checkConfig(_ c: LlamaConfig, _ e: Expected.Config) {
        #expect(c.dim == e.dim)
        #expect(c.hiddenDim == e.hiddenDim)
        #expect(c.layerCount == e.layers)
        #expect(c.headCount == e.heads)
        #expect(c.kvHeadCount == e.kvHeads)
        #expect(c.headDim == e.headDim)
        #expect(c.vocabSize == e.vocab)
        #expect(c.contextLength == e.context)
        #expect(c.normEps == Float(e.normEps))
        #expect(c.ropeTheta == Float(e.ropeTheta))
        #expect(c.tiedEmbeddings == e.tied)
    }
}

/// A fresh temporary directory, removed when the value is released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("balcony-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Copies a fixture file or folder in, returning the copy's URL.
    func copy(_ source: URL, as name: String? = nil) throws -> URL {
        let destination = file(name ?? source.lastPathComponent)
        try FileManager.default.copyItem(at: source, to: destination)
        return destination
    }

    /// Writes `data` cut to its first `length` bytes.
    func truncatedCopy(of source: URL, length: Int, as name: String) throws -> URL {
        let data = try Data(contentsOf: source)
        let destination = file(name)
        try data.prefix(length).write(to: destination)
        return destination
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Expects `body` to throw a `ModelFileError` matching `matches`, whose message contains every
/// string of `mentions`.
func expectModelFileError(_ mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
                          _ matches: (ModelFileError) -> Bool, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a ModelFileError, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ModelFileError {
        #expect(matches(error), "unexpected error case: \(error)", sourceLocation: sourceLocation)
        let message = error.errorDescription ?? ""
        for m in mentions {
            #expect(message.contains(m), "message \"\(message)\" does not mention \"\(m)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a ModelFileError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// Builds small GGUF v3 files byte by byte, following the specification
/// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), to make malformed or unusual
/// files the `gguf` package would refuse to write.
struct GGUFBuilder {
    enum Value {
        case u32(UInt32), f32(Float), string(String)
        /// Any value: its GGUF type code and encoded bytes, written as given (hostile files).
        case raw(type: UInt32, bytes: [UInt8])
    }

    struct Tensor {
        var name: String
        /// PyTorch order; written reversed as ggml's `ne`.
        var shape: [Int]
        var type: UInt32
        var data: [UInt8]
    }

    var metadata: [(String, Value)] = []
    var tensors: [Tensor] = []
    let alignment = 32

    mutating func set(_ key: String, _ value: Value) {
        metadata.removeAll { $0.0 == key }
        metadata.append((key, value))
    }

    /// An F32 tensor filled with `value`.
    mutating func addF32(_ name: String, _ shape: [Int], value: Float = 0.01) {
        let count = shape.reduce(1, *)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 * count)
        for _ in 0..<count { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        tensors.append(Tensor(name: name, shape: shape, type: 0, data: bytes))
    }

    /// A complete llama-architecture model of the given shape with F32 tensors.
    static func llama(arch: String = "llama", dim: Int = 32, hidden: Int = 64, layers: Int = 1, heads: Int = 2,
                      kvHeads: Int = 1, vocab: Int = 16) -> GGUFBuilder {
        var b = GGUFBuilder()
        b.set("general.architecture", .string(arch))
        b.set("\(arch).block_count", .u32(UInt32(layers)))
        b.set("\(arch).embedding_length", .u32(UInt32(dim)))
        b.set("\(arch).feed_forward_length", .u32(UInt32(hidden)))
        b.set("\(arch).attention.head_count", .u32(UInt32(heads)))
        b.set("\(arch).attention.head_count_kv", .u32(UInt32(kvHeads)))
        b.set("\(arch).context_length", .u32(64))
        b.set("\(arch).rope.freq_base", .f32(10000))
        b.set("\(arch).attention.layer_norm_rms_epsilon", .f32(1e-5))
        let headDim = dim / heads
        b.addF32("token_embd.weight", [vocab, dim])
        for i in 0..<layers {
            b.addF32("blk.\(i).attn_norm.weight", [dim], value: 1)
            b.addF32("blk.\(i).attn_q.weight", [heads * headDim, dim])
            b.addF32("blk.\(i).attn_k.weight", [kvHeads * headDim, dim])
            b.addF32("blk.\(i).attn_v.weight", [kvHeads * headDim, dim])
            b.addF32("blk.\(i).attn_output.weight", [dim, heads * headDim])
            b.addF32("blk.\(i).ffn_norm.weight", [dim], value: 1)
            b.addF32("blk.\(i).ffn_gate.weight", [hidden, dim])
            b.addF32("blk.\(i).ffn_up.weight", [hidden, dim])
            b.addF32("blk.\(i).ffn_down.weight", [dim, hidden])
        }
        b.addF32("output_norm.weight", [dim], value: 1)
        b.addF32("output.weight", [vocab, dim])
        return b
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        u32(0x4655_4747)
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            switch value {
            case let .u32(v): u32(4); u32(v)
            case let .f32(v): u32(6); u32(v.bitPattern)
            case let .string(s): u32(8); string(s)
            case let .raw(type, bytes): u32(type); out += bytes
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, o) in zip(tensors, offsets) {
            string(t.name)
            u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { u64(UInt64(d)) }
            u32(t.type)
            u64(UInt64(o))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out += t.data
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    func write(to url: URL) throws {
        try Data(bytes()).write(to: url)
    }
}
