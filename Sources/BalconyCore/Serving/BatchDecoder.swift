import Foundation

/// One sequence's row in a decode step: append `token` to the sequence in `cache` at `exit`.
struct DecodeRow {
    let cache: BalconyCache
    let token: Int
    let exit: ExitChoice
}

extension BalconyModel {
    /// Most rows one decode call takes: matrix products up to this many rows give every row the
    /// arithmetic of a one-row product (`Linear.rowInvariantLimit`), which is what makes batched
    /// decoding batch-invariant.
    static let decodeBatchLimit = Linear.rowInvariantLimit

    /// Depth a row runs base layers to: k for exit k, N for the full model.
    func depth(_ choice: ExitChoice) -> Int {
        switch choice {
        case .full: return config.layerCount
        case let .exit(k): return k
        }
    }

    /// Whether the sequence in `cache` has every layer `choice` needs filled up to its last
    /// position, so that one new token runs with no catch-up (no exit switch to bring up to date).
    func isCaughtUp(_ cache: BalconyCache, for choice: ExitChoice) -> Bool {
        let n = cache.count
        for l in 0..<depth(choice) where cache.filled[l] != n { return false }
        if case let .exit(k) = choice { return cache.balconyFilled(k) == n }
        return true
    }

    /// Appends one token to each row's sequence at the row's exit and returns each row's next-token
    /// logits (`[vocab]` per row): exactly what `forward([token], cache:, exit:)` gives that sequence
    /// alone, as long as there are at most `decodeBatchLimit` rows.
    ///
    /// Rows are ordered deepest first, so that at every base layer the rows that still need it are a
    /// prefix of the activations: layer l runs once over all rows whose exit lies deeper than l (the
    /// base layers up to the shallowest exit are shared by the whole batch), then each exit's balcony
    /// runs over its own rows, and the shared head over all of them. A row whose exit changed since its
    /// last token first needs layers brought up to date for earlier positions; it runs alone through
    /// `forward`, which does that.
    func decode(_ rows: [DecodeRow], scratch: Scratch) throws -> [[Float]] {
        precondition(rows.count <= Self.decodeBatchLimit, "decode batches are at most decodeBatchLimit rows")
        var out = [[Float]](repeating: [], count: rows.count)
        var batch: [Int] = []
        for (i, r) in rows.enumerated() {
            try validate(r.exit)
            try base.check(tokens: [r.token], cache: r.cache.base)
            if isCaughtUp(r.cache, for: r.exit) { batch.append(i) } else { out[i] = try forward([r.token], cache: r.cache, exit: r.exit) }
        }
        guard !batch.isEmpty else { return out }
        batch.sort { depth(rows[$0].exit) > depth(rows[$1].exit) }
        let c = config, dim = c.dim, vocab = c.vocabSize, m = batch.count
        let x = UnsafeMutablePointer<Float>.allocate(capacity: m * dim)
        defer { x.deallocate() }
        base.embed(batch.map { rows[$0].token }, into: x)
        scratch.ensure(tokens: m, config: c, context: batch.map { rows[$0].cache.count + 1 }.max()!)
        let depths = batch.map { depth(rows[$0].exit) }
        for l in 0...depths[0] {
            // Keep h_l of every row that reaches depth l, for later exit switches.
            if layers[l] != nil {
                for (j, i) in batch.enumerated() where depths[j] >= l {
                    let cache = rows[i].cache
                    cache.saveHidden(depth: l, rows: cache.count..<(cache.count + 1), from: x + j * dim)
                }
            }
            guard l < depths[0] else { break }
            let running = depths.prefix { $0 > l }.count
            let layerRows = batch.prefix(running).map { LayerRows(cache: rows[$0].cache.base.layers[l], start: rows[$0].cache.count, count: 1) }
            DecoderLayer.forward(base.weights.layers[l], x: x, rows: layerRows, rope: base.rope, config: c, scratch: scratch)
            for i in batch.prefix(running) { rows[i].cache.filled[l] = rows[i].cache.count + 1 }
        }
        // Each exit's balcony over its rows (consecutive: one depth per exit).
        var j = 0
        while j < m {
            let e = rows[batch[j]].exit
            var end = j + 1
            while end < m && rows[batch[end]].exit == e { end += 1 }
            if case let .exit(k) = e {
                let group = batch[j..<end].map { rows[$0].cache }
                DecoderLayer.forward(layers[k]!, x: x + j * dim, rows: group.map { LayerRows(cache: $0.balconyCache(k), start: $0.count, count: 1) },
                                     rope: base.rope, config: c, scratch: scratch)
                for cache in group { cache.setBalconyFilled(k, cache.count + 1) }
            }
            j = end
        }
        // The shared head: each row normed by its exit's norm, then one product over all rows.
        let xn = UnsafeMutablePointer<Float>.allocate(capacity: m * dim)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: m * vocab)
        defer { xn.deallocate(); logits.deallocate() }
        for (j, i) in batch.enumerated() {
            let norm: [Float]
            if case let .exit(k) = rows[i].exit { norm = norms[k]! } else { norm = base.weights.finalNorm }
            norm.withUnsafeBufferPointer {
                Kernels.rmsNorm(x + j * dim, weight: $0.baseAddress!, out: xn + j * dim, rows: 1, n: dim, eps: c.normEps)
            }
        }
        Linear.forward(base.weights.output, x: xn, tokens: m, y: logits)
        for (j, i) in batch.enumerated() {
            rows[i].cache.base.count += 1
            out[i] = Array(UnsafeBufferPointer(start: logits + j * vocab, count: vocab))
        }
        return out
    }
}
