import CKernels
import Foundation

/// Causal grouped-query attention over a batch of independent sequences, with its backward pass.
/// Rows are `[sequences * tokens, width]`; each sequence attends within itself, query `t` to keys
/// `0 ... t`. The attention probabilities are kept for the backward pass.
///
/// Work is split over (sequence, key/value head) pairs, which own disjoint rows of `dK`/`dV`;
/// each pair runs a C kernel (CKernels/training_impl.h) that visits only the unmasked blocks of
/// eight keys, works on transposed K and V so that vectors run along keys, and keeps its sums in
/// registers. (Per-head SGEMMs, as inference prefill uses, spend most of their time packing and
/// zeroing at the head sizes of small models, and compute the masked half too.)
enum TrainingAttention {
    /// Floats of the saved probabilities: per sequence and head, the lower triangle in blocks of
    /// eight keys (about `tokens² / 2`).
    static func probabilityCount(sequences: Int, tokens: Int, config c: LlamaConfig) -> Int {
        sequences * c.headCount * balcony_attention_probs_count(tokens)
    }

    /// `out[N, qDim]` from rotated `q[N, qDim]`, `k[N, kvDim]`, `v[N, kvDim]`; fills `probs`
    /// (`probabilityCount` floats) on and below the diagonal, or with `probs` nil keeps nothing.
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        probs: UnsafeMutablePointer<Float>?, out: UnsafeMutablePointer<Float>,
                        sequences: Int, tokens T: Int, config c: LlamaConfig) {
        let hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim, kvHeads = c.kvHeadCount
        let group = c.headCount / kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let perHead = balcony_attention_probs_count(T)
        parallelChunks(sequences * kvHeads, minimumPerThread: 1) { items in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: balcony_attention_forward_scratch(T, hd))
            defer { scratch.deallocate() }
            for item in items {
                let s = item / kvHeads, g = item % kvHeads
                let qOffset = s * T * qDim + g * group * hd, kvOffset = s * T * kvDim + g * hd
                balcony_attention_forward(q + qOffset, qDim, k + kvOffset, v + kvOffset, kvDim, T, hd, group, scale,
                                          probs.map { $0 + (s * c.headCount + g * group) * perHead }, out + qOffset, qDim, scratch)
            }
        }
    }

    /// Gradients w.r.t. the rotated queries, keys and values from `dOut[N, qDim]`, all three
    /// overwritten (the heads of a group are summed into `dK` and `dV`).
    static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                         dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
                         sequences: Int, tokens T: Int, config c: LlamaConfig) {
        let hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim, kvHeads = c.kvHeadCount
        let group = c.headCount / kvHeads
        let scale = 1 / Float(hd).squareRoot()
        let perHead = balcony_attention_probs_count(T)
        parallelChunks(sequences * kvHeads, minimumPerThread: 1) { items in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: balcony_attention_backward_scratch(T, hd, group))
            defer { scratch.deallocate() }
            for item in items {
                let s = item / kvHeads, g = item % kvHeads
                let qOffset = s * T * qDim + g * group * hd, kvOffset = s * T * kvDim + g * hd
                balcony_attention_backward(q + qOffset, qDim, k + kvOffset, v + kvOffset, kvDim, T, hd, group, scale,
                                           probs + (s * c.headCount + g * group) * perHead, dOut + qOffset, qDim,
                                           dQ + qOffset, dK + kvOffset, dV + kvOffset, scratch)
            }
        }
    }
}
