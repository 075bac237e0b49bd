import CKernels
import Foundation

/// A stable identifier of a base model's weights, the same whichever file they were loaded from,
/// so that a balcony file can refuse a base model it was not trained on.
///
/// What it covers (version 1), hashed with SHA-256 in this order:
/// 1. the tag `balcony-model-fingerprint/1` and the shape fields `dim`, `hidden_dim`, `layers`,
///    `heads`, `kv_heads`, `head_dim`, `vocab` and whether q/k/v have biases;
/// 2. for each tensor whose layout does not depend on the RoPE row convention — the token
///    embedding; per layer the attention norm, `v_proj` (and its bias), `o_proj`, the FFN norm,
///    `gate_proj`, `up_proj`, `down_proj`; the final norm; the output matrix (the embedding again
///    when tied) — its element count and a fixed strided sample of its values read as F32 bit
///    patterns (little-endian): all values when the tensor has at most 2,048, else 32 runs of 64
///    consecutive values at evenly spaced starts, the first run at the start and the last at the end.
///
/// Left out on purpose: `q_proj`/`k_proj` and their biases (their rows are permuted between
/// llama2.c/GGUF and Hugging Face files), the architecture name, context length, norm epsilon,
/// RoPE settings and the tokenizer (converters and configs disagree on these for the same
/// weights). So a llama2.c `.bin`, the same weights as a Hugging Face folder (F32, or F16/BF16
/// holding exactly those values) and a GGUF F32/F16 file all give the same fingerprint; a
/// quantized copy (Q8_0) has other values and another fingerprint.
///
/// It identifies a model; it is not an integrity check: a change to values outside the sample
/// goes unnoticed. Sampling keeps the cost at about 2,000 values per tensor, so an 8B model
/// hashes in about 20 ms (release build) and touches only a few pages of each mapped tensor.
public enum ModelFingerprint {
    /// Bumped whenever what is hashed changes; files record fingerprints of this version.
    public static let version = 1
    /// Tensors up to this many values are hashed whole.
    public static let wholeTensorLimit = 2048
    static let runs = 32
    static let runLength = 64

    /// The fingerprint of `weights`: 64 lowercase hexadecimal characters.
    public static func compute(_ weights: ModelWeights) -> String {
        let c = weights.config
        var hasher = SHA256()
        let header = "balcony-model-fingerprint/\(version)\n"
            + "dim=\(c.dim) hidden_dim=\(c.hiddenDim) layers=\(c.layerCount) heads=\(c.headCount) "
            + "kv_heads=\(c.kvHeadCount) head_dim=\(c.headDim) vocab=\(c.vocabSize) qkv_bias=\(c.attentionBias ? 1 : 0)\n"
        hasher.update(Array(header.utf8))

        func tensor(_ name: String, _ m: WeightMatrix) {
            addTensor(name, count: m.rows * m.cols, to: &hasher) { start, n, out in read(m, start: start, count: n, into: out) }
        }
        func tensor(_ name: String, _ v: [Float]) {
            v.withUnsafeBufferPointer { src in
                addTensor(name, count: v.count, to: &hasher) { start, n, out in
                    out.update(from: src.baseAddress! + start, count: n)
                }
            }
        }
        tensor("embedding", weights.tokenEmbedding)
        for (i, l) in weights.layers.enumerated() {
            tensor("layer.\(i).attention_norm", l.attentionNorm)
            tensor("layer.\(i).v_proj", l.wv)
            if let bv = l.bv { tensor("layer.\(i).v_bias", bv) }
            tensor("layer.\(i).o_proj", l.wo)
            tensor("layer.\(i).ffn_norm", l.ffnNorm)
            tensor("layer.\(i).gate_proj", l.gate)
            tensor("layer.\(i).up_proj", l.up)
            tensor("layer.\(i).down_proj", l.down)
        }
        tensor("final_norm", weights.finalNorm)
        tensor("output", weights.output)
        return hasher.finalize().hex
    }

    /// A shortened fingerprint for messages (the first 12 characters, like a short git hash).
    public static func short(_ fingerprint: String) -> String { String(fingerprint.prefix(12)) }

    /// The starts of the runs sampled from a tensor of `count` values (one run of `count` when
    /// the tensor is hashed whole).
    static func sampleRuns(count: Int) -> [(start: Int, length: Int)] {
        if count <= wholeTensorLimit { return [(0, count)] }
        return (0..<runs).map { r in (r * (count - runLength) / (runs - 1), runLength) }
    }

    private static func addTensor(_ name: String, count: Int, to hasher: inout SHA256,
                                  read: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        hasher.update(Array("\(name) \(count)\n".utf8))
        let runs = sampleRuns(count: count)
        let longest = runs.map(\.length).max() ?? 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(longest, 1)) { buffer in
            for run in runs where run.length > 0 {
                read(run.start, run.length, buffer.baseAddress!)
                // The platforms Balcony supports are little-endian, so the raw bytes are the
                // little-endian bit patterns the description promises.
                hasher.update(UnsafeRawBufferPointer(start: buffer.baseAddress!, count: run.length * 4))
            }
        }
    }

    /// Values `start ..< start + count` of a matrix (row-major) as F32, widening 16-bit values and
    /// dequantizing blocks.
    private static func read(_ m: WeightMatrix, start: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch m.type {
        case .f32:
            out.update(from: m.f32 + start, count: count)
        case .f16, .bf16:
            // The same values the matrix had when 16-bit files were widened at load, so balcony
            // files trained then still match.
            balcony_half_widen_rows(m.halfBits + start, m.bf16Flag, count, out, 0, 1)
        default:
            // Blocks never cross rows: dequantize each row the run touches and keep its part.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: m.cols) { row in
                var i = start
                while i < start + count {
                    let r = i / m.cols, c0 = i % m.cols, n = min(m.cols - c0, start + count - i)
                    m.widenRows(r, r + 1, into: row.baseAddress!)
                    (out + (i - start)).update(from: row.baseAddress! + c0, count: n)
                    i += n
                }
            }
        }
    }
}
