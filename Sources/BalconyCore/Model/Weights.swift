import CKernels
import Foundation

/// The element type of a tensor, in its file and in memory: every weight matrix stays in its file's
/// type (F16 and BF16 in 16 bits, GGML's quantized blocks as they are) and is multiplied in that
/// form; prefill widens tiles of rows that are not F32 for SGEMM. Raw values are llama.cpp's names.
public enum WeightType: String, Sendable, Codable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0", iq4_nl = "IQ4_NL"
    case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K", iq4_xs = "IQ4_XS"

    public init(_ q: QuantizedType) { self.init(rawValue: q.rawValue)! }

    /// The block type of a quantized matrix; nil for F32, F16 and BF16.
    public var quantized: QuantizedType? { QuantizedType(rawValue: rawValue) }

    public var bytesPerBlock: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        default: return quantized!.blockBytes
        }
    }

    public var valuesPerBlock: Int { quantized?.blockValues ?? 1 }

    /// Bytes of `elements` values (a whole number of blocks), or nil when the count overflows.
    public func byteCount(elements: Int) -> Int? {
        let (n, overflow) = (elements / valuesPerBlock).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : n
    }
}

/// Element types found in files: the same set as in memory.
public typealias FileDType = WeightType

/// GGML's Q8_0 block: one F16 scale then 32 signed bytes; value = scale * q.
public enum Q8_0 {
    public static let blockSize = 32
    public static let blockBytes = 34
}

/// Keeps the memory behind weights alive: a mapped file or an allocation of our own.
public final class WeightStorage: @unchecked Sendable {
    private let mapped: MappedFile?
    private let owned: UnsafeMutableRawPointer?

    public init(mapped: MappedFile) {
        self.mapped = mapped
        self.owned = nil
    }

    /// Takes ownership of `pointer` (allocated with `UnsafeMutableRawPointer.allocate`).
    public init(owning pointer: UnsafeMutableRawPointer) {
        self.mapped = nil
        self.owned = pointer
    }

    deinit { owned?.deallocate() }
}

/// A 2-D weight `[rows, cols]` in PyTorch's layout (`rows` = output features, `cols` = input
/// features), row-major. Immutable once built; safe to share between threads.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let type: WeightType
    /// The type the tensor had in its file: `type` itself, except for llama2.c Q8 groups that are
    /// not GGML blocks, which are widened to F32 at load.
    public let fileType: FileDType
    public let data: UnsafeRawPointer
    let storage: WeightStorage
    /// A lossless packed copy of F32 weights that small-batch products (decode) read instead of
    /// `data`; everything else (prefill's SGEMM, embedding rows, training) reads `data`.
    public let packed: PackedF32Matrix?

    public init(rows: Int, cols: Int, type: WeightType, fileType: FileDType, data: UnsafeRawPointer, storage: WeightStorage,
                packed: PackedF32Matrix? = nil) {
        self.rows = rows
        self.cols = cols
        self.type = type
        self.fileType = fileType
        self.data = data
        self.storage = storage
        self.packed = packed
    }

    /// This matrix with a packed copy for decode, when it is F32 and can be packed (else itself).
    public func withPackedCopy() -> WeightMatrix {
        guard type == .f32, packed == nil, let p = PackedF32Matrix.pack(f32, rows: rows, cols: cols) else { return self }
        return WeightMatrix(rows: rows, cols: cols, type: type, fileType: fileType, data: data, storage: storage, packed: p)
    }

    public var f32: UnsafePointer<Float> {
        precondition(type == .f32)
        return data.assumingMemoryBound(to: Float.self)
    }

    /// Bytes read when the whole matrix is multiplied once (the decode-time memory traffic).
    public var byteCount: Int {
        if let packed { return packed.byteCount }
        return rows * rowBytes
    }

    /// Bytes of one row in memory.
    public var rowBytes: Int {
        switch type {
        case .f32: return cols * 4
        case .f16, .bf16: return cols * 2
        default: return type.quantized!.rowBytes(cols: cols)
        }
    }

    /// An owned F32 matrix initialised from `values` (row-major, rows x cols).
    public static func owned(rows: Int, cols: Int, values: [Float]) -> WeightMatrix {
        precondition(values.count == rows * cols)
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(values.count, 1) * 4, alignment: 64)
        values.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return WeightMatrix(rows: rows, cols: cols, type: .f32, fileType: .f32, data: p, storage: WeightStorage(owning: p))
    }

    /// Builds a matrix from a file's bytes, in the file's element type: used in place when
    /// suitably aligned (`storage` keeps the mapping alive), else copied.
    /// - Throws: `.corrupt` when a quantized tensor's rows are not whole blocks or its size
    ///   overflows, `.truncated` when `bytes` is shorter than the shape needs.
    public static func fromFile(bytes: UnsafeRawBufferPointer, dtype: FileDType, rows: Int, cols: Int,
                                storage: WeightStorage, source: String, name: String) throws -> WeightMatrix {
        if dtype.valuesPerBlock > 1 && cols % dtype.valuesPerBlock != 0 {
            throw ModelFileError.corrupt(source, "\(dtype.rawValue) tensor '\(name)' has rows of \(cols) values, not a multiple of its \(dtype.valuesPerBlock)-value blocks")
        }
        let (count, overflow) = rows.multipliedReportingOverflow(by: cols)
        guard rows >= 0, cols >= 0, !overflow, let need = dtype.byteCount(elements: count) else {
            throw ModelFileError.corrupt(source, "tensor '\(name)' of shape [\(rows), \(cols)] is too large")
        }
        guard bytes.count >= need else { throw ModelFileError.truncated(source, needed: need, have: bytes.count) }
        let base = bytes.baseAddress!
        // F32 rows are read as floats; every other type's kernels read 16-bit fields at even offsets.
        let alignment = dtype == .f32 ? 4 : 2
        if Int(bitPattern: base) % alignment == 0 {
            return WeightMatrix(rows: rows, cols: cols, type: dtype, fileType: dtype, data: base, storage: storage)
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(need, 1), alignment: 64)
        p.copyMemory(from: base, byteCount: need)
        return WeightMatrix(rows: rows, cols: cols, type: dtype, fileType: dtype, data: p, storage: WeightStorage(owning: p))
    }

    /// The 16-bit elements of an F16 or BF16 matrix, and the C kernels' flag telling which.
    var halfBits: UnsafePointer<UInt16> { data.assumingMemoryBound(to: UInt16.self) }
    var bf16Flag: Int32 { type == .bf16 ? 1 : 0 }

    /// Widens rows `lo ..< hi` into `out` (row-major F32, cols per row), split over the threads.
    public func widenRows(_ lo: Int, _ hi: Int, into out: UnsafeMutablePointer<Float>) {
        let m = self
        parallelChunks(hi - lo, minimumPerThread: 8) { range in
            let dst = out + range.lowerBound * m.cols, r0 = lo + range.lowerBound, r1 = lo + range.upperBound
            switch m.type {
            case .f32: dst.update(from: m.f32 + r0 * m.cols, count: (r1 - r0) * m.cols)
            case .f16, .bf16: balcony_half_widen_rows(m.halfBits, m.bf16Flag, m.cols, dst, r0, r1)
            default: balcony_quant_dequantize_rows(m.type.quantized!.ggmlId, m.data, m.cols, dst, r0, r1)
            }
        }
    }

    /// Writes row `r` as F32 into `out` (cols values). Used for embedding lookup.
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        widenRows(r, r + 1, into: out)
    }

    /// The whole matrix as F32 values (tests, checkpoints and conversions; not for hot paths).
    public func toFloats() -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        out.withUnsafeMutableBufferPointer { buf in
            for r in 0..<rows { copyRow(r, into: buf.baseAddress! + r * cols) }
        }
        return out
    }
}

/// Converting file element types into F32.
public enum TensorConversion {
    public static func widen(_ bytes: UnsafeRawBufferPointer, dtype: FileDType, into out: UnsafeMutablePointer<Float>, count: Int) {
        switch dtype {
        case .f32:
            for i in 0..<count { out[i] = bytes.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { out[i] = HalfPrecision.f16ToF32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<count { out[i] = HalfPrecision.bf16ToF32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        default:
            // One "row" of `count` values: the dequantizer reads 16-bit fields, so an odd address is
            // copied first.
            let q = dtype.quantized!
            let n = q.rowBytes(cols: count)
            let aligned = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 16)
            defer { aligned.deallocate() }
            aligned.copyMemory(from: bytes.baseAddress!, byteCount: n)
            balcony_quant_dequantize_rows(q.ggmlId, aligned, count, out, 0, 1)
        }
    }

    /// A 1-D tensor (norm weights, biases) as F32.
    public static func floats(_ bytes: UnsafeRawBufferPointer, dtype: FileDType, count: Int, source: String) throws -> [Float] {
        guard count >= 0, count % dtype.valuesPerBlock == 0, let need = dtype.byteCount(elements: count) else {
            throw ModelFileError.corrupt(source, "a \(dtype.rawValue) tensor of \(count) values is not a whole number of blocks")
        }
        guard bytes.count >= need else { throw ModelFileError.truncated(source, needed: need, have: bytes.count) }
        return [Float](unsafeUninitializedCapacity: count) { buf, n in
            widen(bytes, dtype: dtype, into: buf.baseAddress!, count: count)
            n = count
        }
    }
}

/// Weights of one decoder layer, PyTorch layouts. Names follow Hugging Face's
/// (`self_attn.q_proj`, `mlp.gate_proj`, ...); llama2.c calls gate/up/down w1/w3/w2.
public struct LayerWeights: Sendable {
    public var attentionNorm: [Float]      // [dim]
    public var wq: WeightMatrix            // [qDim, dim]
    public var wk: WeightMatrix            // [kvDim, dim]
    public var wv: WeightMatrix            // [kvDim, dim]
    public var wo: WeightMatrix            // [dim, qDim]
    public var bq: [Float]?                // [qDim] (Qwen2)
    public var bk: [Float]?                // [kvDim]
    public var bv: [Float]?                // [kvDim]
    public var ffnNorm: [Float]            // [dim]
    public var gate: WeightMatrix          // [hidden, dim]  (w1)
    public var up: WeightMatrix            // [hidden, dim]  (w3)
    public var down: WeightMatrix          // [dim, hidden]  (w2)

    public init(attentionNorm: [Float], wq: WeightMatrix, wk: WeightMatrix, wv: WeightMatrix, wo: WeightMatrix,
                bq: [Float]? = nil, bk: [Float]? = nil, bv: [Float]? = nil, ffnNorm: [Float],
                gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix) {
        self.attentionNorm = attentionNorm
        self.wq = wq; self.wk = wk; self.wv = wv; self.wo = wo
        self.bq = bq; self.bk = bk; self.bv = bv
        self.ffnNorm = ffnNorm
        self.gate = gate; self.up = up; self.down = down
    }

    /// The seven product matrices, in file order.
    public var matrices: [WeightMatrix] { [wq, wk, wv, wo, gate, up, down] }

    /// This layer with `transform` applied to each of its seven product matrices.
    public func mapMatrices(_ transform: (WeightMatrix) -> WeightMatrix) -> LayerWeights {
        var l = self
        l.wq = transform(wq); l.wk = transform(wk); l.wv = transform(wv); l.wo = transform(wo)
        l.gate = transform(gate); l.up = transform(up); l.down = transform(down)
        return l
    }

    /// Checks every shape against the configuration, naming the first that disagrees.
    public func validate(_ c: LlamaConfig, layer: Int, source: String) throws {
        func check(_ name: String, _ m: WeightMatrix, _ rows: Int, _ cols: Int) throws {
            guard m.rows == rows, m.cols == cols else {
                throw ModelFileError.shapeMismatch(source, tensor: "layer \(layer) \(name)", expected: [rows, cols], found: [m.rows, m.cols])
            }
        }
        func check(_ name: String, _ v: [Float]?, _ n: Int) throws {
            if let v, v.count != n {
                throw ModelFileError.shapeMismatch(source, tensor: "layer \(layer) \(name)", expected: [n], found: [v.count])
            }
        }
        try check("attention norm", attentionNorm, c.dim)
        try check("ffn norm", ffnNorm, c.dim)
        try check("q_proj", wq, c.qDim, c.dim)
        try check("k_proj", wk, c.kvDim, c.dim)
        try check("v_proj", wv, c.kvDim, c.dim)
        try check("o_proj", wo, c.dim, c.qDim)
        try check("gate_proj", gate, c.hiddenDim, c.dim)
        try check("up_proj", up, c.hiddenDim, c.dim)
        try check("down_proj", down, c.dim, c.hiddenDim)
        try check("q bias", bq, c.qDim)
        try check("k bias", bk, c.kvDim)
        try check("v bias", bv, c.kvDim)
    }
}

/// All weights of a model. Immutable; share it freely.
public struct ModelWeights: Sendable {
    public var config: LlamaConfig
    public var tokenEmbedding: WeightMatrix   // [vocab, dim]
    public var layers: [LayerWeights]
    public var finalNorm: [Float]             // [dim]
    public var output: WeightMatrix           // [vocab, dim]; the embedding itself when tied

    public init(config: LlamaConfig, tokenEmbedding: WeightMatrix, layers: [LayerWeights], finalNorm: [Float], output: WeightMatrix) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.output = output
    }

    public func validate(source: String) throws {
        try config.validate(source: source)
        let c = config
        guard layers.count == c.layerCount else {
            throw ModelFileError.corrupt(source, "has \(layers.count) layers but the configuration says \(c.layerCount)")
        }
        guard tokenEmbedding.rows == c.vocabSize, tokenEmbedding.cols == c.dim else {
            throw ModelFileError.shapeMismatch(source, tensor: "token embedding", expected: [c.vocabSize, c.dim], found: [tokenEmbedding.rows, tokenEmbedding.cols])
        }
        guard output.rows == c.vocabSize, output.cols == c.dim else {
            throw ModelFileError.shapeMismatch(source, tensor: "output", expected: [c.vocabSize, c.dim], found: [output.rows, output.cols])
        }
        guard finalNorm.count == c.dim else {
            throw ModelFileError.shapeMismatch(source, tensor: "final norm", expected: [c.dim], found: [finalNorm.count])
        }
        for (i, l) in layers.enumerated() { try l.validate(c, layer: i, source: source) }
    }

    /// How many matrices (the embedding, every layer's seven, the output when it is not the
    /// embedding) each element type has: a quantized file mixes types per tensor.
    public var matrixTypeCounts: [String: Int] {
        var counts: [String: Int] = [:]
        let all = [tokenEmbedding] + layers.flatMap(\.matrices) + (config.tiedEmbeddings ? [] : [output])
        for m in all { counts[m.fileType.rawValue, default: 0] += 1 }
        return counts
    }

    /// The element types of the matrices, for reports.
    public var weightTypes: Set<String> {
        var s: Set<String> = [tokenEmbedding.fileType.rawValue, output.fileType.rawValue]
        for l in layers { for m in l.matrices { s.insert(m.fileType.rawValue) } }
        return s
    }

    /// The product matrices (every layer's seven and the output), the ones decode streams.
    var productMatrices: [WeightMatrix] {
        layers.flatMap(\.matrices) + [output]
    }

    /// Whether `mode` packs these weights: `auto` when their F32 matrices are too large for a CPU
    /// cache and the CPU has AVX2.
    public func packs(_ mode: F32Packing) -> Bool {
        switch mode {
        case .on: return true
        case .off: return false
        case .auto:
            let f32Bytes = productMatrices.filter { $0.type == .f32 }.reduce(0) { $0 + $1.rows * $1.cols * 4 }
            return f32Bytes >= F32Packing.autoBytes && F32Packing.cpuSupportsFastUnpacking
        }
    }

    /// These weights with packed copies of their F32 product matrices for decode, as `mode` says.
    /// The token embedding stays as it is (decode reads one row of it), also when tied to the output.
    public func packingF32(_ mode: F32Packing) -> ModelWeights {
        guard packs(mode) else { return self }
        var w = self
        w.output = output.withPackedCopy()
        w.layers = layers.map { $0.mapMatrices { $0.withPackedCopy() } }
        return w
    }

    /// How many product matrices have a packed copy for decode.
    public var packedMatrixCount: Int { productMatrices.filter { $0.packed != nil }.count }

    /// Bytes of weights read to produce one token (all layers, the head and one embedding row).
    public var bytesPerToken: Int {
        var n = output.byteCount + tokenEmbedding.byteCount / max(tokenEmbedding.rows, 1)
        for l in layers {
            for m in l.matrices { n += m.byteCount }
            n += 4 * (l.attentionNorm.count + l.ffnNorm.count)
        }
        return n
    }
}
