import CKernels
import Foundation

/// The element types a weight matrix can have in memory: each stays in its file's type (F16 and
/// BF16 matrices in 16 bits, Q8_0 quantized) and is multiplied in that form; prefill widens
/// tiles of 16-bit and Q8_0 rows for SGEMM.
public enum WeightType: String, Sendable, Codable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case q8_0 = "Q8_0"
}

/// Element types found in files.
public enum FileDType: String, Sendable, Codable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", q8_0 = "Q8_0"

    public var bytesPerBlock: Int { switch self { case .f32: 4; case .f16, .bf16: 2; case .q8_0: Q8_0.blockBytes } }
    public var valuesPerBlock: Int { self == .q8_0 ? Q8_0.blockSize : 1 }
    public func byteCount(elements: Int) -> Int { elements / valuesPerBlock * bytesPerBlock }
}

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
    /// The type the tensor had in its file (F16 and BF16 become F32 in memory).
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
        switch type {
        case .f32: return rows * cols * 4
        case .f16, .bf16: return rows * cols * 2
        case .q8_0: return rows * cols / Q8_0.blockSize * Q8_0.blockBytes
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
    public static func fromFile(bytes: UnsafeRawBufferPointer, dtype: FileDType, rows: Int, cols: Int,
                                storage: WeightStorage, source: String, name: String) throws -> WeightMatrix {
        let count = rows * cols
        if dtype == .q8_0 && cols % Q8_0.blockSize != 0 {
            throw ModelFileError.corrupt(source, "Q8_0 tensor '\(name)' has rows of \(cols) values, not a multiple of 32")
        }
        let need = dtype.byteCount(elements: count)
        guard bytes.count >= need else { throw ModelFileError.truncated(source, needed: need, have: bytes.count) }
        let base = bytes.baseAddress!
        switch dtype {
        case .f32:
            if Int(bitPattern: base) % 4 == 0 {
                return WeightMatrix(rows: rows, cols: cols, type: .f32, fileType: .f32, data: base, storage: storage)
            }
            let p = UnsafeMutableRawPointer.allocate(byteCount: need, alignment: 64)
            p.copyMemory(from: base, byteCount: need)
            return WeightMatrix(rows: rows, cols: cols, type: .f32, fileType: .f32, data: p, storage: WeightStorage(owning: p))
        case .f16, .bf16:
            let type: WeightType = dtype == .f16 ? .f16 : .bf16
            if Int(bitPattern: base) % 2 == 0 {
                return WeightMatrix(rows: rows, cols: cols, type: type, fileType: dtype, data: base, storage: storage)
            }
            let p = UnsafeMutableRawPointer.allocate(byteCount: need, alignment: 64)
            p.copyMemory(from: base, byteCount: need)
            return WeightMatrix(rows: rows, cols: cols, type: type, fileType: dtype, data: p, storage: WeightStorage(owning: p))
        case .q8_0:
            if Int(bitPattern: base) % 2 == 0 {
                return WeightMatrix(rows: rows, cols: cols, type: .q8_0, fileType: .q8_0, data: base, storage: storage)
            }
            let p = UnsafeMutableRawPointer.allocate(byteCount: need, alignment: 64)
            p.copyMemory(from: base, byteCount: need)
            return WeightMatrix(rows: rows, cols: cols, type: .q8_0, fileType: .q8_0, data: p, storage: WeightStorage(owning: p))
        }
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
            case .q8_0: balcony_q8_0_dequantize_rows(m.data, m.cols, dst, r0, r1)
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
        case .q8_0:
            let blocks = count / Q8_0.blockSize
            for b in 0..<blocks {
                let off = b * Q8_0.blockBytes
                let scale = HalfPrecision.f16ToF32(bytes.loadUnaligned(fromByteOffset: off, as: UInt16.self))
                for j in 0..<Q8_0.blockSize {
                    out[b * Q8_0.blockSize + j] = scale * Float(bytes.load(fromByteOffset: off + 2 + j, as: Int8.self))
                }
            }
        }
    }

    /// A 1-D tensor (norm weights, biases) as F32.
    public static func floats(_ bytes: UnsafeRawBufferPointer, dtype: FileDType, count: Int, source: String) throws -> [Float] {
        let need = dtype.byteCount(elements: count)
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

    /// The dominant in-memory weight type, for reports.
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
