/// Converts q/k projection rows (and their biases) between the two RoPE pairings (docs/rope.md).
///
/// For a projection of `heads` heads of size `d`, Hugging Face row `h*d + j` (`j < d/2`) holds
/// interleaved row `h*d + 2j`, and HF row `h*d + d/2 + j` holds interleaved row `h*d + 2j + 1`
/// (transformers' `convert_llama_weights_to_hf.py` `permute`). Both directions are pure row
/// shuffles, so a round trip is exact.
public enum RopeRowOrder {
    /// Interleaved-pair rows to Hugging Face half-split rows. `values` is `[heads * d, cols]`
    /// row-major; a bias is `cols == 1`.
    public static func toHalfSplit(_ values: [Float], heads: Int, cols: Int) -> [Float] {
        permute(values, heads: heads, cols: cols, toHalfSplit: true)
    }

    /// Hugging Face half-split rows back to interleaved-pair rows (the inverse of `toHalfSplit`).
    public static func toInterleaved(_ values: [Float], heads: Int, cols: Int) -> [Float] {
        permute(values, heads: heads, cols: cols, toHalfSplit: false)
    }

    /// Rows from the model's convention `style` into Hugging Face order (a no-op for half-split).
    public static func toHuggingFace(_ values: [Float], style: RopeStyle, heads: Int, cols: Int) -> [Float] {
        style == .interleaved ? toHalfSplit(values, heads: heads, cols: cols) : values
    }

    /// Rows from Hugging Face order into the model's convention `style`.
    public static func fromHuggingFace(_ values: [Float], style: RopeStyle, heads: Int, cols: Int) -> [Float] {
        style == .interleaved ? toInterleaved(values, heads: heads, cols: cols) : values
    }

    private static func permute(_ v: [Float], heads: Int, cols: Int, toHalfSplit: Bool) -> [Float] {
        precondition(heads > 0 && cols > 0 && v.count % (heads * cols) == 0, "rows must split into heads")
        let rows = v.count / cols
        let d = rows / heads
        precondition(d % 2 == 0, "head size must be even")
        var out = [Float](repeating: 0, count: v.count)
        v.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, t = dst.baseAddress!
                func move(row from: Int, to: Int) { (t + to * cols).update(from: s + from * cols, count: cols) }
                for h in 0..<heads {
                    for j in 0..<(d / 2) {
                        let hfFirst = h * d + j, hfSecond = h * d + d / 2 + j
                        let ilFirst = h * d + 2 * j, ilSecond = h * d + 2 * j + 1
                        if toHalfSplit {
                            move(row: ilFirst, to: hfFirst)
                            move(row: ilSecond, to: hfSecond)
                        } else {
                            move(row: hfFirst, to: ilFirst)
                            move(row: hfSecond, to: ilSecond)
                        }
                    }
                }
            }
        }
        return out
    }
}
