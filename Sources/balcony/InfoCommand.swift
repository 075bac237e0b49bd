import ArgumentParser
import BalconyCore
import Foundation

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe a model: architecture, size, tensor types, tokenizer.")

    @OptionGroup var options: ModelOptions
    @OptionGroup var balconyOptions: BalconyOptions
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        var path: String
        var format: String
        var architecture: String
        var parameters: Int
        var non_embedding_parameters: Int
        var layers: Int
        var dim: Int
        var hidden_dim: Int
        var heads: Int
        var kv_heads: Int
        var head_dim: Int
        var vocab_size: Int
        var context_length: Int
        var rope_theta: Float
        var rope_style: String
        var rope_scaling: RopeScaling?
        var norm_eps: Float
        var tied_embeddings: Bool
        var attention_bias: Bool
        var tensor_types: [String]
        /// Matrices per element type (a quantized file mixes them).
        var matrix_types: [String: Int]
        var bytes_per_token: Int
        /// Product matrices decode reads from a packed F32 copy (`--pack-f32`).
        var packed_f32_matrices: Int
        var tokenizer: TokenizerReport?
        var exits: [ExitCost]?
        /// The SGEMM kernel prefill and training products run on (`BLAS.kernelName`).
        var gemm_kernel: String
    }

    struct TokenizerReport: Codable {
        var kind: String
        var vocab_size: Int
        var bos_token_id: Int?
        var eos_token_ids: [Int]
        var adds_bos: Bool
    }

    func run() async throws {
        try await reportingErrors {
            let rt = try await options.load(requireTokenizer: false)
            let c = rt.model.config
            let w = rt.model.weights
            let embedding = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2)
            let tok = rt.tokenizer.map {
                TokenizerReport(kind: $0.kind, vocab_size: $0.vocabularySize, bos_token_id: $0.bosTokenId,
                                eos_token_ids: $0.eosTokenIds.sorted(), adds_bos: $0.addsBOS)
            }
            let r = Report(
                path: rt.path, format: rt.loaded.format, architecture: c.architecture, parameters: c.parameterCount,
                non_embedding_parameters: c.parameterCount - embedding, layers: c.layerCount, dim: c.dim,
                hidden_dim: c.hiddenDim, heads: c.headCount, kv_heads: c.kvHeadCount, head_dim: c.headDim,
                vocab_size: c.vocabSize, context_length: c.contextLength, rope_theta: c.ropeTheta,
                rope_style: c.ropeStyle.rawValue, rope_scaling: c.ropeScaling, norm_eps: c.normEps,
                tied_embeddings: c.tiedEmbeddings, attention_bias: c.attentionBias,
                tensor_types: w.weightTypes.sorted(), matrix_types: w.matrixTypeCounts, bytes_per_token: w.bytesPerToken,
                packed_f32_matrices: w.packedMatrixCount, tokenizer: tok,
                exits: try balconyOptions.load(rt).map { ExitCostModel($0).table }, gemm_kernel: BLAS.kernelName)
            if json {
                print(try jsonLine(r))
                return
            }
            print("model          \(r.path) (\(r.format))")
            print("architecture   \(r.architecture), \(formatCount(r.parameters)) parameters (\(formatCount(r.non_embedding_parameters)) non-embedding)")
            print("layers         \(r.layers) x (dim \(r.dim), hidden \(r.hidden_dim), \(r.heads) heads, \(r.kv_heads) kv heads, head dim \(r.head_dim))")
            print("vocabulary     \(r.vocab_size), context \(r.context_length) tokens, \(r.tied_embeddings ? "tied" : "separate") output head")
            var rope = "theta \(r.rope_theta), \(r.rope_style) pairs"
            if let s = r.rope_scaling { rope += ", llama3 scaling x\(s.factor)" }
            print("rope           \(rope); rms norm eps \(r.norm_eps)\(r.attention_bias ? "; q/k/v biases" : "")")
            let packed = r.packed_f32_matrices > 0 ? " (\(r.packed_f32_matrices) F32 matrices packed)" : ""
            let types = r.matrix_types.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
            print("matrices       \(types); \(formatBytes(r.bytes_per_token)) of weights read per token\(packed)")
            if let t = r.tokenizer {
                let bos = t.bos_token_id.map(String.init) ?? "none"
                print("tokenizer      \(t.kind), \(t.vocab_size) tokens, BOS \(bos)\(t.adds_bos ? " (added)" : ""), EOS \(t.eos_token_ids.map(String.init).joined(separator: ","))")
            } else {
                print("tokenizer      none found (pass --tokenizer)")
            }
            print("matrix kernel  \(r.gemm_kernel) (products of more than \(Linear.rowInvariantLimit) rows)")
            if let exits = r.exits {
                print("exits          exit  layers  cost of full  ideal speedup")
                for e in exits {
                    let name = String(repeating: " ", count: max(0, 4 - e.exit.count)) + e.exit
                    print(String(format: "               %@  %6d  %12.3f  %12.2fx", name, e.layers, e.costFraction, e.idealSpeedup))
                }
            }
        }
    }
}

func formatCount(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2fB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.1fM", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1fK", d / 1e3) }
    return "\(n)"
}

func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.2f GiB", d / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.1f MiB", d / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / Double(1 << 10)) }
    return "\(n) B"
}
