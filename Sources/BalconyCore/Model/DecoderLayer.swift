/// One LLaMA decoder layer, the same code for base layers and (later) balcony layers:
/// `x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))`, with q/k/v biases when the weights have them.
enum DecoderLayer {
    /// Runs `w` over `x[tokens, dim]` in place; rows are positions `start ..< start + tokens`.
    /// Appends this layer's keys and values for those positions to `cache`.
    static func forward(_ w: LayerWeights, x: UnsafeMutablePointer<Float>, tokens: Int, start: Int,
                        cache: LayerKVCache, rope: RotaryEmbedding, config c: LlamaConfig, scratch s: Scratch) {
        let keys = cache.keys + start * c.kvDim
        let values = cache.values + start * c.kvDim

        w.attentionNorm.withUnsafeBufferPointer {
            Kernels.rmsNorm(x, weight: $0.baseAddress!, out: s.xn, rows: tokens, n: c.dim, eps: c.normEps)
        }
        Linear.forward(w.wq, x: s.xn, tokens: tokens, y: s.q)
        Linear.forward(w.wk, x: s.xn, tokens: tokens, y: keys)
        Linear.forward(w.wv, x: s.xn, tokens: tokens, y: values)
        if let b = w.bq { b.withUnsafeBufferPointer { Kernels.addBias(s.q, bias: $0.baseAddress!, rows: tokens, n: c.qDim) } }
        if let b = w.bk { b.withUnsafeBufferPointer { Kernels.addBias(keys, bias: $0.baseAddress!, rows: tokens, n: c.kvDim) } }
        if let b = w.bv { b.withUnsafeBufferPointer { Kernels.addBias(values, bias: $0.baseAddress!, rows: tokens, n: c.kvDim) } }
        rope.apply(s.q, tokens: tokens, heads: c.headCount, start: start)
        rope.apply(keys, tokens: tokens, heads: c.kvHeadCount, start: start)

        Attention.causal(q: s.q, cache: cache, start: start, tokens: tokens, config: c, scores: s.scores, out: s.att)
        Linear.forward(w.wo, x: s.att, tokens: tokens, y: s.proj)
        Kernels.add(x, s.proj, tokens * c.dim)

        w.ffnNorm.withUnsafeBufferPointer {
            Kernels.rmsNorm(x, weight: $0.baseAddress!, out: s.xn, rows: tokens, n: c.dim, eps: c.normEps)
        }
        Linear.forward(w.gate, x: s.xn, tokens: tokens, y: s.gate)
        Linear.forward(w.up, x: s.xn, tokens: tokens, y: s.up)
        Kernels.swiglu(gate: s.gate, up: s.up, tokens * c.hiddenDim)
        Linear.forward(w.down, x: s.gate, tokens: tokens, y: s.proj)
        Kernels.add(x, s.proj, tokens * c.dim)
    }
}
