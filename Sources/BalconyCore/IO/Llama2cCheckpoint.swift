import Foundation

/// Reader for llama2.c checkpoints (Karpathy's `export.py`): the legacy v0 layout (7-int header,
/// negative vocab size = separate classifier), and the versioned "ak42" layouts v1 (float32) and
/// v2 (Q8 with a group size). llama2.c rotates interleaved RoPE pairs, so the weights load with
/// `ropeStyle = .interleaved` and no row permutation.
public enum Llama2cCheckpoint {
    static let magic: UInt32 = 0x616b_3432

    struct Header {
        var dim, hidden, layers, heads, kvHeads, vocab, seqLen: Int
        var shared: Bool
        var version: Int
        var groupSize: Int
        var dataOffset: Int
    }

    public static func load(url: URL) throws -> ModelWeights {
        let file = try MappedFile(url: url)
        let path = url.path
        let h = try readHeader(file, path)
        let config = LlamaConfig(
            architecture: "llama", dim: h.dim, hiddenDim: h.hidden, layerCount: h.layers, headCount: h.heads,
            kvHeadCount: h.kvHeads, vocabSize: h.vocab, contextLength: h.seqLen, normEps: 1e-5, ropeTheta: 10000,
            ropeStyle: .interleaved, tiedEmbeddings: h.shared)
        try config.validate(source: path)
        guard config.dim % config.headCount == 0 else {
            throw ModelFileError.corrupt(path, "dim \(config.dim) is not divisible by \(config.headCount) heads")
        }
        let weights: ModelWeights
        switch h.version {
        case 0, 1: weights = try loadFloat(file, h, config, path)
        default: weights = try loadQ8(file, h, config, path)
        }
        try weights.validate(source: path)
        return weights
    }

    static func readHeader(_ file: MappedFile, _ path: String) throws -> Header {
        var r = ByteReader(file.bytes, context: path)
        let first = try r.read(UInt32.self)
        var version = 0
        if first == magic {
            version = Int(try r.read(Int32.self))
            guard version == 1 || version == 2 else { throw ModelFileError.unsupportedVersion(path, version) }
        } else {
            r.offset = 0
        }
        var p: [Int] = []
        for _ in 0..<7 { p.append(Int(try r.read(Int32.self))) }
        var h = Header(dim: p[0], hidden: p[1], layers: p[2], heads: p[3], kvHeads: p[4], vocab: abs(p[5]), seqLen: p[6],
                       shared: p[5] > 0, version: version, groupSize: 0, dataOffset: 28)
        if version > 0 {
            h.shared = try r.read(UInt8.self) != 0
            if version == 2 { h.groupSize = Int(try r.read(Int32.self)) }
            h.dataOffset = 256
            guard file.count >= 256 else { throw ModelFileError.truncated(path, needed: 256, have: file.count) }
        }
        // Reject absurd headers before computing sizes from them (a random file is not a model).
        let limits = [h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen]
        guard limits.allSatisfy({ $0 > 0 && $0 < 1 << 24 }), h.layers < 4096 else {
            if version == 0 && first != magic {
                throw ModelFileError.unknownFormat(path)
            }
            throw ModelFileError.corrupt(path, "header has implausible sizes \(limits)")
        }
        if version == 2 {
            guard h.groupSize > 0, h.dim % h.groupSize == 0 else {
                throw ModelFileError.corrupt(path, "Q8 group size \(h.groupSize) does not divide dim \(h.dim)")
            }
        }
        return h
    }

    /// Consecutive float tensors of a v0/v1 file.
    private struct FloatCursor {
        let file: MappedFile
        let storage: WeightStorage
        let path: String
        var offset: Int

        mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
            guard let n = CheckedSize.product(count, 4), CheckedSize.fits(n, at: offset, in: file.count) else {
                throw ModelFileError.truncated(path, needed: CheckedSize.sum(offset, CheckedSize.product(count, 4) ?? Int.max) ?? Int.max, have: file.count)
            }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + n)])
        }

        mutating func vector(_ count: Int) throws -> [Float] {
            try TensorConversion.floats(take(count), dtype: .f32, count: count, source: path)
        }

        mutating func matrix(_ rows: Int, _ cols: Int, _ name: String) throws -> WeightMatrix {
            try WeightMatrix.fromFile(bytes: take(rows * cols), dtype: .f32, rows: rows, cols: cols, storage: storage, source: path, name: name)
        }
    }

    private static func loadFloat(_ file: MappedFile, _ h: Header, _ c: LlamaConfig, _ path: String) throws -> ModelWeights {
        let L = c.layerCount, dim = c.dim, hidden = c.hiddenDim, q = c.qDim, kv = c.kvDim
        // v0 also stores RoPE's cos/sin tables (seq_len x head_size/2, twice), which we recompute.
        // Checked: the sizes come from the header (validate bounds them; this keeps the sum honest too).
        guard let parameters = c.checkedParameterCount(),
              let ropeTables = CheckedSize.product(h.version == 0 ? c.contextLength : 0, c.headDim),
              let floats = CheckedSize.sum(parameters, ropeTables), let bytes = CheckedSize.product(4, floats),
              let expected = CheckedSize.sum(h.dataOffset, bytes) else {
            throw ModelFileError.corrupt(path, "the header's sizes \([h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen]) describe more bytes than a file can hold")
        }
        if file.count < expected { throw ModelFileError.truncated(path, needed: expected, have: file.count) }
        if file.count > expected {
            throw ModelFileError.corrupt(path, "the header describes \(expected) bytes but the file has \(file.count); header and weights disagree")
        }
        var cur = FloatCursor(file: file, storage: WeightStorage(mapped: file), path: path, offset: h.dataOffset)
        var attNorm: [[Float]] = [], ffnNorm: [[Float]] = []
        var wq: [WeightMatrix] = [], wk: [WeightMatrix] = [], wv: [WeightMatrix] = [], wo: [WeightMatrix] = []
        var w1: [WeightMatrix] = [], w2: [WeightMatrix] = [], w3: [WeightMatrix] = []
        let embedding: WeightMatrix
        let finalNorm: [Float]
        if h.version == 0 {
            embedding = try cur.matrix(c.vocabSize, dim, "token_embedding_table")
            for _ in 0..<L { attNorm.append(try cur.vector(dim)) }
            for i in 0..<L { wq.append(try cur.matrix(q, dim, "wq[\(i)]")) }
            for i in 0..<L { wk.append(try cur.matrix(kv, dim, "wk[\(i)]")) }
            for i in 0..<L { wv.append(try cur.matrix(kv, dim, "wv[\(i)]")) }
            for i in 0..<L { wo.append(try cur.matrix(dim, q, "wo[\(i)]")) }
            for _ in 0..<L { ffnNorm.append(try cur.vector(dim)) }
            for i in 0..<L { w1.append(try cur.matrix(hidden, dim, "w1[\(i)]")) }
            for i in 0..<L { w2.append(try cur.matrix(dim, hidden, "w2[\(i)]")) }
            for i in 0..<L { w3.append(try cur.matrix(hidden, dim, "w3[\(i)]")) }
            finalNorm = try cur.vector(dim)
            _ = try cur.take(c.contextLength * c.headDim)  // freq_cis real and imag: recomputed instead
        } else {
            for _ in 0..<L { attNorm.append(try cur.vector(dim)) }
            for _ in 0..<L { ffnNorm.append(try cur.vector(dim)) }
            finalNorm = try cur.vector(dim)
            embedding = try cur.matrix(c.vocabSize, dim, "tok_embeddings")
            for i in 0..<L { wq.append(try cur.matrix(q, dim, "wq[\(i)]")) }
            for i in 0..<L { wk.append(try cur.matrix(kv, dim, "wk[\(i)]")) }
            for i in 0..<L { wv.append(try cur.matrix(kv, dim, "wv[\(i)]")) }
            for i in 0..<L { wo.append(try cur.matrix(dim, q, "wo[\(i)]")) }
            for i in 0..<L { w1.append(try cur.matrix(hidden, dim, "w1[\(i)]")) }
            for i in 0..<L { w2.append(try cur.matrix(dim, hidden, "w2[\(i)]")) }
            for i in 0..<L { w3.append(try cur.matrix(hidden, dim, "w3[\(i)]")) }
        }
        let output = c.tiedEmbeddings ? embedding : try cur.matrix(c.vocabSize, dim, "wcls")
        let layers = (0..<L).map { i in
            LayerWeights(attentionNorm: attNorm[i], wq: wq[i], wk: wk[i], wv: wv[i], wo: wo[i], ffnNorm: ffnNorm[i],
                         gate: w1[i], up: w3[i], down: w2[i])
        }
        return ModelWeights(config: c, tokenEmbedding: embedding, layers: layers, finalNorm: finalNorm, output: output)
    }

    /// v2: norms in float32, then every quantized tensor's int8 values, then all their scales.
    /// Groups of `groupSize` become GGML Q8_0 blocks of 32 (scale rounded to F16, a relative change
    /// below 5e-4) so the same Q8_0 kernels serve; a group size that is not a multiple of 32, or rows
    /// that are not, fall back to F32.
    private static func loadQ8(_ file: MappedFile, _ h: Header, _ c: LlamaConfig, _ path: String) throws -> ModelWeights {
        let L = c.layerCount, dim = c.dim, hidden = c.hiddenDim, q = c.qDim, kv = c.kvDim
        var shapes: [(Int, Int)] = [(c.vocabSize, dim)]
        shapes += Array(repeating: (q, dim), count: L) + Array(repeating: (kv, dim), count: L)
        shapes += Array(repeating: (kv, dim), count: L) + Array(repeating: (dim, q), count: L)
        shapes += Array(repeating: (hidden, dim), count: L) + Array(repeating: (dim, hidden), count: L)
        shapes += Array(repeating: (hidden, dim), count: L)
        if !c.tiedEmbeddings { shapes.append((c.vocabSize, dim)) }
        let gs = h.groupSize
        for (r, k) in shapes where (r * k) % gs != 0 {
            throw ModelFileError.corrupt(path, "a \(r)x\(k) tensor is not a whole number of Q8 groups of \(gs)")
        }
        var totalValues: Int? = 0
        for (r, k) in shapes { totalValues = totalValues.flatMap { CheckedSize.sum($0, CheckedSize.product(r, k) ?? -1) } }
        guard let totalValues, let normBytes = CheckedSize.product(2 * L + 1, dim, 4),
              let scaleBytes = CheckedSize.product(totalValues / gs, 4),
              let expected = CheckedSize.sum(h.dataOffset, normBytes, totalValues, scaleBytes) else {
            throw ModelFileError.corrupt(path, "the header's sizes \([h.dim, h.hidden, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen]) describe more bytes than a file can hold")
        }
        if file.count < expected { throw ModelFileError.truncated(path, needed: expected, have: file.count) }
        if file.count > expected {
            throw ModelFileError.corrupt(path, "the header describes \(expected) bytes but the file has \(file.count); header and weights disagree")
        }
        var off = h.dataOffset
        func floats(_ n: Int) throws -> [Float] {
            defer { off += n * 4 }
            return try TensorConversion.floats(UnsafeRawBufferPointer(rebasing: file.bytes[off..<(off + n * 4)]), dtype: .f32, count: n, source: path)
        }
        let attNorm = try (0..<L).map { _ in try floats(dim) }
        let ffnNorm = try (0..<L).map { _ in try floats(dim) }
        let finalNorm = try floats(dim)
        var qOff = off
        var sOff = off + totalValues
        let asBlocks = gs % Q8_0.blockSize == 0
        var mats: [WeightMatrix] = []
        for (rows, cols) in shapes {
            let n = rows * cols
            let values = file.bytes.baseAddress! + qOff
            let scales = file.bytes.baseAddress! + sOff
            mats.append(convertGroups(values: values, scales: scales, rows: rows, cols: cols, groupSize: gs, blocks: asBlocks && cols % Q8_0.blockSize == 0))
            qOff += n
            sOff += n / gs * 4
        }
        var it = mats.makeIterator()
        let embedding = it.next()!
        let wq = (0..<L).map { _ in it.next()! }, wk = (0..<L).map { _ in it.next()! }
        let wv = (0..<L).map { _ in it.next()! }, wo = (0..<L).map { _ in it.next()! }
        let w1 = (0..<L).map { _ in it.next()! }, w2 = (0..<L).map { _ in it.next()! }
        let w3 = (0..<L).map { _ in it.next()! }
        let output = c.tiedEmbeddings ? embedding : it.next()!
        let layers = (0..<L).map { i in
            LayerWeights(attentionNorm: attNorm[i], wq: wq[i], wk: wk[i], wv: wv[i], wo: wo[i], ffnNorm: ffnNorm[i],
                         gate: w1[i], up: w3[i], down: w2[i])
        }
        return ModelWeights(config: c, tokenEmbedding: embedding, layers: layers, finalNorm: finalNorm, output: output)
    }

    private static func convertGroups(values: UnsafeRawPointer, scales: UnsafeRawPointer, rows: Int, cols: Int,
                                      groupSize gs: Int, blocks: Bool) -> WeightMatrix {
        let n = rows * cols
        let q = values.assumingMemoryBound(to: Int8.self)
        if blocks {
            let nBlocks = n / Q8_0.blockSize
            let p = UnsafeMutableRawPointer.allocate(byteCount: nBlocks * Q8_0.blockBytes, alignment: 64)
            for b in 0..<nBlocks {
                let first = b * Q8_0.blockSize
                let s = scales.loadUnaligned(fromByteOffset: (first / gs) * 4, as: Float.self)
                let dst = p + b * Q8_0.blockBytes
                dst.storeBytes(of: HalfPrecision.f32ToF16(s), as: UInt16.self)
                (dst + 2).copyMemory(from: q + first, byteCount: Q8_0.blockSize)
            }
            return WeightMatrix(rows: rows, cols: cols, type: .q8_0, fileType: .q8_0, data: p, storage: WeightStorage(owning: p))
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        let f = p.bindMemory(to: Float.self, capacity: n)
        for i in 0..<n { f[i] = Float(q[i]) * scales.loadUnaligned(fromByteOffset: (i / gs) * 4, as: Float.self) }
        return WeightMatrix(rows: rows, cols: cols, type: .f32, fileType: .q8_0, data: p, storage: WeightStorage(owning: p))
    }
}
