import CKernels

/// GGML's block-quantized tensor types as llama.cpp writes them in GGUF files. Every one is kept
/// in its file's bytes and multiplied in that form (`CKernels/quants*.c`): decode quantizes the
/// activations to 8-bit blocks and takes integer dot products, as llama.cpp does; prefill widens
/// tiles of rows for SGEMM. Raw values are llama.cpp's names.
public enum QuantizedType: String, Sendable, Codable, CaseIterable {
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0", iq4_nl = "IQ4_NL"
    case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K", iq4_xs = "IQ4_XS"

    /// ggml's type id (`enum ggml_type`), what the C kernels dispatch on.
    public var ggmlId: Int32 {
        switch self {
        case .q4_0: return Int32(BALCONY_GGML_Q4_0)
        case .q4_1: return Int32(BALCONY_GGML_Q4_1)
        case .q5_0: return Int32(BALCONY_GGML_Q5_0)
        case .q5_1: return Int32(BALCONY_GGML_Q5_1)
        case .q8_0: return Int32(BALCONY_GGML_Q8_0)
        case .iq4_nl: return Int32(BALCONY_GGML_IQ4_NL)
        case .q2_K: return Int32(BALCONY_GGML_Q2_K)
        case .q3_K: return Int32(BALCONY_GGML_Q3_K)
        case .q4_K: return Int32(BALCONY_GGML_Q4_K)
        case .q5_K: return Int32(BALCONY_GGML_Q5_K)
        case .q6_K: return Int32(BALCONY_GGML_Q6_K)
        case .iq4_xs: return Int32(BALCONY_GGML_IQ4_XS)
        }
    }

    public init?(ggmlId: UInt32) {
        guard let t = Self.allCases.first(where: { UInt32($0.ggmlId) == ggmlId }) else { return nil }
        self = t
    }

    /// Values per block: 32, or 256 for the k-quants and IQ4_XS (a row must hold whole blocks).
    public var blockValues: Int { balcony_quant_block_values(ggmlId) }
    /// Bytes per block.
    public var blockBytes: Int { balcony_quant_block_bytes(ggmlId) }

    /// Bytes of a row of `cols` values (cols a multiple of `blockValues`).
    public func rowBytes(cols: Int) -> Int { cols / blockValues * blockBytes }

    /// Bits per weight, for reports.
    public var bitsPerWeight: Double { Double(blockBytes * 8) / Double(blockValues) }

    /// The activation blocks its dot product takes (ggml's `vec_dot_type`): Q8_0, Q8_1 or Q8_K.
    var dotType: Int32 { balcony_quant_dot_type(ggmlId) }
    /// Bytes of one activation row of `cols` values quantized to the dot type.
    func activationRowBytes(cols: Int) -> Int {
        cols / balcony_quant_block_values(dotType) * balcony_quant_block_bytes(dotType)
    }
}
