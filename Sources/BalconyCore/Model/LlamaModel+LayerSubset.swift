import Foundation

/// Running the base model on a subset of its layers: what the evaluation baselines need. Early
/// exit runs layers `0 ..< k`; ShortGPT-style layer pruning runs the layers it keeps. Both read out
/// through the final norm and the shared head, by the same code.
extension LlamaModel {
    /// Checks that `layers` are distinct base-layer indices in ascending order.
    public func validate(layerSubset layers: [Int]) throws {
        for (i, l) in layers.enumerated() {
            guard l >= 0, l < config.layerCount, i == 0 || layers[i - 1] < l else {
                throw LayerSubsetError(layers: layers, layerCount: config.layerCount)
            }
        }
    }

    /// Runs `tokens` through the base layers in `layers` (ascending; all of them for the full model)
    /// after the positions already in `cache`, appends them to the cache, and returns the logits of
    /// the final norm and head, `[vocab]` for the last token or `[tokens, vocab]` for all. Each
    /// layer uses its own KV cache, so decoding one token at a time works for any subset.
    public func forward(_ tokens: [Int], cache: KVCache, layers: [Int], outputs: Outputs = .last) throws -> [Float] {
        try validate(layerSubset: layers)
        try check(tokens: tokens, cache: cache)
        let n = tokens.count, dim = config.dim, vocab = config.vocabSize
        let x = UnsafeMutablePointer<Float>.allocate(capacity: n * dim)
        defer { x.deallocate() }
        embed(tokens, into: x)
        for l in layers { runLayers(l..<(l + 1), x: x, tokens: n, start: cache.count, cache: cache) }
        cache.advance(by: n)
        let rows = outputs == .all ? n : 1
        let first = outputs == .all ? x : x + (n - 1) * dim
        return [Float](unsafeUninitializedCapacity: rows * vocab) { buf, count in
            head(first, rows: rows, logits: buf.baseAddress!)
            count = rows * vocab
        }
    }

    /// Calls `body(layer, input, output)` for every base layer over `tokens` (from an empty cache),
    /// with `input`/`output` the hidden states `[tokens, dim]` entering and leaving that layer.
    public func forEachLayerTransition(_ tokens: [Int],
                                       _ body: (Int, UnsafePointer<Float>, UnsafePointer<Float>) throws -> Void) throws {
        let cache = makeCache(capacity: tokens.count)
        try check(tokens: tokens, cache: cache)
        let count = tokens.count * config.dim
        let x = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let before = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { x.deallocate(); before.deallocate() }
        embed(tokens, into: x)
        for l in 0..<config.layerCount {
            before.update(from: x, count: count)
            runLayers(l..<(l + 1), x: x, tokens: tokens.count, start: 0, cache: cache)
            try body(l, before, x)
        }
    }
}

/// A layer subset that is not distinct, ascending base-layer indices.
public struct LayerSubsetError: LocalizedError, Equatable {
    public var layers: [Int]
    public var layerCount: Int

    public var errorDescription: String? {
        "layers \(layers.map(String.init).joined(separator: ",")) are not distinct ascending indices of this \(layerCount)-layer model's layers (0..<\(layerCount))"
    }
}
