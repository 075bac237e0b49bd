import Foundation

/// The trainable weights of one balcony (the paper's `B_k = (Layer^B_k, RMSNorm^B_k)`): a decoder
/// layer shaped exactly like the base model's layers, plus the exit's own RMSNorm. Flat, mutable
/// Float arrays in PyTorch layouts, in the base model's q/k row order (its `ropeStyle`); gradients
/// and optimizer moments use the same type.
public struct BalconyParameters: Sendable, Equatable {
    /// Exit depth k: the balcony reads the hidden state after base layers `0 ..< k`.
    public var exit: Int
    public var attentionNorm: [Float]   // [dim]            input_layernorm
    public var wq: [Float]              // [qDim, dim]      self_attn.q_proj
    public var wk: [Float]              // [kvDim, dim]     self_attn.k_proj
    public var wv: [Float]              // [kvDim, dim]     self_attn.v_proj
    public var wo: [Float]              // [dim, qDim]      self_attn.o_proj
    public var bq: [Float]?             // [qDim]           (Qwen2)
    public var bk: [Float]?             // [kvDim]
    public var bv: [Float]?             // [kvDim]
    public var ffnNorm: [Float]         // [dim]            post_attention_layernorm
    public var gate: [Float]            // [hidden, dim]    mlp.gate_proj
    public var up: [Float]              // [hidden, dim]    mlp.up_proj
    public var down: [Float]            // [dim, hidden]    mlp.down_proj
    public var norm: [Float]            // [dim]            the exit norm RMSNorm^B_k

    /// The authors' default initialization: the layer is a copy of the base model's last layer
    /// (both of its norms included); the exit norm is a copy of layer k's input norm.
    public static func copyInitialized(from base: ModelWeights, exit: Int) throws -> BalconyParameters {
        guard exit >= 1, exit < base.config.layerCount else { throw BalconyError.exitOutOfRange(exit, layers: base.config.layerCount) }
        let last = base.layers[base.config.layerCount - 1]
        return BalconyParameters(
            exit: exit, attentionNorm: last.attentionNorm, wq: last.wq.toFloats(), wk: last.wk.toFloats(),
            wv: last.wv.toFloats(), wo: last.wo.toFloats(), bq: last.bq, bk: last.bk, bv: last.bv,
            ffnNorm: last.ffnNorm, gate: last.gate.toFloats(), up: last.up.toFloats(), down: last.down.toFloats(),
            norm: base.layers[exit].attentionNorm)
    }

    /// Random initialization: linear weights ~ N(0, 0.02), biases 0, norm weights 1.
    public static func randomInitialized(config c: LlamaConfig, exit: Int, seed: UInt64) -> BalconyParameters {
        func normal(_ name: String, _ n: Int) -> [Float] {
            var g = NormalGenerator(seed: NormalGenerator.seed(seed, name: "balcony.\(exit).\(name)"))
            return (0..<n).map { _ in Float(g.next(std: 0.02)) }
        }
        let ones = [Float](repeating: 1, count: c.dim)
        return BalconyParameters(
            exit: exit, attentionNorm: ones, wq: normal("wq", c.qDim * c.dim), wk: normal("wk", c.kvDim * c.dim),
            wv: normal("wv", c.kvDim * c.dim), wo: normal("wo", c.dim * c.qDim),
            bq: c.attentionBias ? .init(repeating: 0, count: c.qDim) : nil,
            bk: c.attentionBias ? .init(repeating: 0, count: c.kvDim) : nil,
            bv: c.attentionBias ? .init(repeating: 0, count: c.kvDim) : nil,
            ffnNorm: ones, gate: normal("gate", c.hiddenDim * c.dim), up: normal("up", c.hiddenDim * c.dim),
            down: normal("down", c.dim * c.hiddenDim), norm: ones)
    }

    /// Zeros of the same shapes (gradients, optimizer moments).
    public func zeros() -> BalconyParameters {
        var z = self
        z.forEachTensor { _, t in t = [Float](repeating: 0, count: t.count) }
        return z
    }

    /// Every tensor with its Hugging Face name inside the authors' `exit_modules.{i}` block
    /// (`0.<decoder layer name>` for the layer, `1.weight` for the exit norm), in a fixed order.
    nonisolated(unsafe) public static let tensorNames: [(String, WritableKeyPath<BalconyParameters, [Float]>)] = [
        ("0.input_layernorm.weight", \.attentionNorm),
        ("0.self_attn.q_proj.weight", \.wq),
        ("0.self_attn.k_proj.weight", \.wk),
        ("0.self_attn.v_proj.weight", \.wv),
        ("0.self_attn.o_proj.weight", \.wo),
        ("0.post_attention_layernorm.weight", \.ffnNorm),
        ("0.mlp.gate_proj.weight", \.gate),
        ("0.mlp.up_proj.weight", \.up),
        ("0.mlp.down_proj.weight", \.down),
        ("1.weight", \.norm),
    ]

    nonisolated(unsafe) public static let biasNames: [(String, WritableKeyPath<BalconyParameters, [Float]?>)] = [
        ("0.self_attn.q_proj.bias", \.bq),
        ("0.self_attn.k_proj.bias", \.bk),
        ("0.self_attn.v_proj.bias", \.bv),
    ]

    /// Visits every tensor (biases only when present), in `tensorNames` then `biasNames` order.
    /// Stored properties are passed directly: an `inout` access through a key path may copy the
    /// whole array (an optimizer step touching every tensor would copy every tensor).
    public mutating func forEachTensor(_ body: (String, inout [Float]) throws -> Void) rethrows {
        let n = Self.tensorNames.map(\.0), b = Self.biasNames.map(\.0)
        try body(n[0], &attentionNorm)
        try body(n[1], &wq)
        try body(n[2], &wk)
        try body(n[3], &wv)
        try body(n[4], &wo)
        try body(n[5], &ffnNorm)
        try body(n[6], &gate)
        try body(n[7], &up)
        try body(n[8], &down)
        try body(n[9], &norm)
        if bq != nil { try body(b[0], &bq!) }
        if bk != nil { try body(b[1], &bk!) }
        if bv != nil { try body(b[2], &bv!) }
    }

    /// Read-only visit in the same order.
    public func visitTensors(_ body: (String, [Float]) throws -> Void) rethrows {
        for (name, kp) in Self.tensorNames { try body(name, self[keyPath: kp]) }
        for (name, kp) in Self.biasNames { if let t = self[keyPath: kp] { try body(name, t) } }
    }

    /// Number of trainable values.
    public var parameterCount: Int {
        var n = 0
        visitTensors { _, t in n += t.count }
        return n
    }

    /// The layer as inference weights (owned copies), for `DecoderLayer`.
    public func layerWeights(config c: LlamaConfig) -> LayerWeights {
        LayerWeights(attentionNorm: attentionNorm,
                     wq: .owned(rows: c.qDim, cols: c.dim, values: wq), wk: .owned(rows: c.kvDim, cols: c.dim, values: wk),
                     wv: .owned(rows: c.kvDim, cols: c.dim, values: wv), wo: .owned(rows: c.dim, cols: c.qDim, values: wo),
                     bq: bq, bk: bk, bv: bv, ffnNorm: ffnNorm,
                     gate: .owned(rows: c.hiddenDim, cols: c.dim, values: gate), up: .owned(rows: c.hiddenDim, cols: c.dim, values: up),
                     down: .owned(rows: c.dim, cols: c.hiddenDim, values: down))
    }

    /// Checks shapes against a configuration (a balcony file for another shape of model).
    public func validate(config c: LlamaConfig, source: String) throws {
        let expected: [(String, Int, Int)] = [
            ("input_layernorm", attentionNorm.count, c.dim), ("q_proj", wq.count, c.qDim * c.dim),
            ("k_proj", wk.count, c.kvDim * c.dim), ("v_proj", wv.count, c.kvDim * c.dim),
            ("o_proj", wo.count, c.dim * c.qDim), ("post_attention_layernorm", ffnNorm.count, c.dim),
            ("gate_proj", gate.count, c.hiddenDim * c.dim), ("up_proj", up.count, c.hiddenDim * c.dim),
            ("down_proj", down.count, c.dim * c.hiddenDim), ("exit norm", norm.count, c.dim),
        ]
        for (name, have, want) in expected where have != want {
            throw ModelFileError.corrupt(source, "balcony at exit \(exit): \(name) has \(have) values, the base model needs \(want)")
        }
        guard exit >= 1, exit < c.layerCount else {
            throw ModelFileError.corrupt(source, "balcony exit \(exit) is outside 1..\(c.layerCount - 1) for this \(c.layerCount)-layer model")
        }
        if c.attentionBias != (bq != nil) {
            throw ModelFileError.corrupt(source, "balcony at exit \(exit) \(c.attentionBias ? "lacks" : "has") q/k/v biases, unlike the base model")
        }
    }
}
