import CKernels

/// Decode's products with GGML block-quantized weights (`QuantizedType`), as llama.cpp computes
/// them: each activation row is quantized once to 8-bit blocks of the weight type's dot type, then
/// every weight row is an integer dot product with it, scaled per block (`CKernels/quants*.c`).
/// The weights are never widened as a whole; each block is read from memory once per call for all
/// the activation rows (see `SmallBatch`), and each output comes from one row-kernel call over one
/// activation row, so results do not depend on the batch.
enum QuantKernels {
    /// `ys[j][m, rows_j] = x[m, cols] · W_j^T` for quantized matrices whose types share a dot type.
    static func gemv(_ ws: [WeightMatrix], x: UnsafePointer<Float>, tokens m: Int, ys: [UnsafeMutablePointer<Float>]) {
        let types = ws.map { $0.type.quantized! }, cols = ws[0].cols
        let dotType = types[0].dotType, rowBytes = types[0].activationRowBytes(cols: cols)
        let xq = UnsafeMutableRawPointer.allocate(byteCount: max(m * rowBytes, 1), alignment: 64)
        defer { xq.deallocate() }
        for i in 0..<m { balcony_quant_activations(dotType, x + i * cols, cols, xq + i * rowBytes) }
        let ids = types.map(\.ggmlId)
        SmallBatch.run(rows: ws.map(\.rows), tokens: m) { j, i, r in
            balcony_quant_gemv(ids[j], ws[j].data, cols, xq + i * rowBytes, ys[j] + i * ws[j].rows, r.lowerBound, r.upperBound)
        }
    }
}
