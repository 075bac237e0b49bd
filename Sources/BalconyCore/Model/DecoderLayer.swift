/// One sequence's rows in a batched layer pass: its keys and values go to a layer's cache.
public typealias LayerRows = SequenceRows<LayerKVCache>

/// One LLaMA decoder layer, the same code for base layers and balcony layers:
/// `x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))`, with q/k/v biases when the weights have them.
enum DecoderLayer {
    /// Runs `w` over `x[tokens, dim]` in place; rows are positions `start ..< start + tokens`.
    /// Appends this layer's keys and values for those positions to `cache`.
    static func forward(_ w: LayerWeights, x: UnsafeMutablePointer<Float>, tokens: Int, start: Int,
                        cache: LayerKVCache, rope: RotaryEmbedding, config c: LlamaConfig, scratch s: Scratch) {
        forward(w, x: x, rows: [LayerRows(cache: cache, start: start, count: tokens)], rope: rope, config: c, scratch: s)
    }

    /// Runs `w` over the rows of several sequences at once (`rows` in the order they sit in `x`):
    /// every projection is one matrix product over all rows, so the weights are read once per batch;
    /// RoPE and attention run per sequence, against that sequence's own cache.
    static func forward(_ w: LayerWeights, x: UnsafeMutablePointer<Float>, rows: [LayerRows],
                        rope: RotaryEmbedding, config c: LlamaConfig, scratch s: Scratch) {
        let tokens = rows.reduce(0) { $0 + $1.count }
        // One sequence writes its keys and values straight into its cache; a batch gathers them in
        // scratch first and scatters them per sequence.
        let single = rows.count == 1 ? rows[0] : nil
        let keys = single.map { $0.cache.keys + $0.start * c.kvDim } ?? s.k
        let values = single.map { $0.cache.values + $0.start * c.kvDim } ?? s.v

        w.attentionNorm.withUnsafeBufferPointer {
            Kernels.rmsNorm(x, weight: $0.baseAddress!, out: s.xn, rows: tokens, n: c.dim, eps: c.normEps)
        }
        Linear.forward([w.wq, w.wk, w.wv], x: s.xn, tokens: tokens, y: [s.q, keys, values])
        if let b = w.bq { b.withUnsafeBufferPointer { Kernels.addBias(s.q, bias: $0.baseAddress!, rows: tokens, n: c.qDim) } }
        if let b = w.bk { b.withUnsafeBufferPointer { Kernels.addBias(keys, bias: $0.baseAddress!, rows: tokens, n: c.kvDim) } }
        if let b = w.bv { b.withUnsafeBufferPointer { Kernels.addBias(values, bias: $0.baseAddress!, rows: tokens, n: c.kvDim) } }

        var offset = 0
        for r in rows {
            let q = s.q + offset * c.qDim
            let k = keys + offset * c.kvDim
            rope.apply(q, tokens: r.count, heads: c.headCount, start: r.start)
            rope.apply(k, tokens: r.count, heads: c.kvHeadCount, start: r.start)
            if single == nil {
                (r.cache.keys + r.start * c.kvDim).update(from: k, count: r.count * c.kvDim)
                (r.cache.values + r.start * c.kvDim).update(from: values + offset * c.kvDim, count: r.count * c.kvDim)
            }
            Attention.causal(q: q, cache: r.cache, start: r.start, tokens: r.count, config: c,
                             scores: s.scores, out: s.att + offset * c.qDim)
            offset += r.count
        }
        Linear.forward(w.wo, x: s.att, tokens: tokens, y: s.proj)
        Kernels.add(x, s.proj, tokens * c.dim)

        w.ffnNorm.withUnsafeBufferPointer {
            Kernels.rmsNorm(x, weight: $0.baseAddress!, out: s.xn, rows: tokens, n: c.dim, eps: c.normEps)
        }
        Linear.forward([w.gate, w.up], x: s.xn, tokens: tokens, y: [s.gate, s.up])
        Kernels.swiglu(gate: s.gate, up: s.up, tokens * c.hiddenDim)
        Linear.forward(w.down, x: s.gate, tokens: tokens, y: s.proj)
        Kernels.add(x, s.proj, tokens * c.dim)
    }
}
