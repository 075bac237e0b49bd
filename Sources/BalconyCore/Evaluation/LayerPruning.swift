import Foundation

/// ShortGPT's layer pruning (Men et al., 2024, "ShortGPT: Layers in Large Language Models are More
/// Redundant Than You Expect"): a layer whose output is nearly parallel to its input changes little,
/// so it can be dropped. Block Influence `BI_i = 1 - E_t[cos(h_i,t, h_{i+1},t)]`, the mean over every
/// position of the calibration text of one minus the cosine similarity between the hidden state
/// entering layer i and the one leaving it. Keeping k layers drops the N-k with the lowest BI.
public struct BlockInfluence: Sendable, Codable, Equatable {
    /// BI of every base layer, in layer order.
    public var scores: [Double]
    /// Calibration positions averaged over.
    public var tokens: Int

    /// BI over `tokens`, run in non-overlapping windows of `window` positions (each from an empty
    /// cache, as the paper runs its calibration samples); every position of every window counts.
    public static func measure(model: LlamaModel, tokens: [Int], window: Int) throws -> BlockInfluence {
        let n = model.config.layerCount, dim = model.config.dim
        var sums = [Double](repeating: 0, count: n)
        var count = 0
        let ctx = max(1, min(window, model.config.contextLength))
        var begin = 0
        while begin < tokens.count {
            let win = Array(tokens[begin..<min(tokens.count, begin + ctx)])
            try model.forEachLayerTransition(win) { l, input, output in
                for t in 0..<win.count {
                    sums[l] += 1 - cosine(input + t * dim, output + t * dim, dim)
                }
            }
            count += win.count
            begin += ctx
        }
        return BlockInfluence(scores: sums.map { $0 / Double(max(count, 1)) }, tokens: count)
    }

    /// The `k` layers kept when the `N - k` with the lowest BI are removed, ascending (ties: the
    /// later layer is removed first, a stable order the independent check uses too).
    public func keptLayers(_ k: Int) -> [Int] {
        let removed = Set(removalOrder.prefix(max(0, scores.count - k)))
        return scores.indices.filter { !removed.contains($0) }
    }

    /// Layers from the least to the most influential (the order ShortGPT removes them in).
    public var removalOrder: [Int] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 > $1 }
    }

    static func cosine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in 0..<n {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y
            na += x * x
            nb += y * y
        }
        let d = (na * nb).squareRoot()
        return d > 0 ? dot / d : 1
    }
}
