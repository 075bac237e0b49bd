/// A growable block of floats owned by a training workspace. Workspaces keep one per activation
/// and size it for the batch at hand, so that a training step allocates nothing once the first
/// step of a given shape has run. Contents are undefined after growth.
final class TrainingBuffer {
    private(set) var pointer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private(set) var capacity = 1

    /// Ensures room for `count` floats and returns the (possibly new) base address.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            pointer = .allocate(capacity: count)
            capacity = count
        }
        return pointer
    }

    deinit { pointer.deallocate() }
}

/// Read-only pointers to every tensor of a `BalconyParameters`, valid inside `withPointers`.
struct BalconyWeightPointers {
    var attentionNorm, wq, wk, wv, wo, ffnNorm, gate, up, down, norm: UnsafePointer<Float>
    var bq, bk, bv: UnsafePointer<Float>?
}

/// Mutable pointers to every tensor of a `BalconyParameters` (a gradient), valid inside
/// `withMutablePointers`.
struct BalconyGradientPointers {
    var attentionNorm, wq, wk, wv, wo, ffnNorm, gate, up, down, norm: UnsafeMutablePointer<Float>
    var bq, bk, bv: UnsafeMutablePointer<Float>?
}

extension BalconyParameters {
    /// Calls `body` with pointers to every tensor; arrays are not copied.
    func withPointers<R>(_ body: (BalconyWeightPointers) throws -> R) rethrows -> R {
        func opt<T>(_ a: [Float]?, _ f: (UnsafePointer<Float>?) throws -> T) rethrows -> T {
            guard let a else { return try f(nil) }
            return try a.withUnsafeBufferPointer { try f($0.baseAddress!) }
        }
        return try attentionNorm.withUnsafeBufferPointer { an in
            try wq.withUnsafeBufferPointer { wq in
            try wk.withUnsafeBufferPointer { wk in
            try wv.withUnsafeBufferPointer { wv in
            try wo.withUnsafeBufferPointer { wo in
            try ffnNorm.withUnsafeBufferPointer { fn in
            try gate.withUnsafeBufferPointer { g in
            try up.withUnsafeBufferPointer { u in
            try down.withUnsafeBufferPointer { d in
            try norm.withUnsafeBufferPointer { n in
            try opt(bq) { bq in try opt(bk) { bk in try opt(bv) { bv in
                try body(BalconyWeightPointers(
                    attentionNorm: an.baseAddress!, wq: wq.baseAddress!, wk: wk.baseAddress!, wv: wv.baseAddress!,
                    wo: wo.baseAddress!, ffnNorm: fn.baseAddress!, gate: g.baseAddress!, up: u.baseAddress!,
                    down: d.baseAddress!, norm: n.baseAddress!, bq: bq, bk: bk, bv: bv))
            } } }
            } } } } } } } } }
        }
    }

    /// Calls `body` with mutable pointers to every tensor, in place (no copy when uniquely referenced).
    mutating func withMutablePointers<R>(_ body: (BalconyGradientPointers) throws -> R) rethrows -> R {
        func opt<T>(_ a: inout [Float]?, _ f: (UnsafeMutablePointer<Float>?) throws -> T) rethrows -> T {
            guard a != nil else { return try f(nil) }
            return try a!.withUnsafeMutableBufferPointer { try f($0.baseAddress!) }
        }
        return try attentionNorm.withUnsafeMutableBufferPointer { an in
            try wq.withUnsafeMutableBufferPointer { wq in
            try wk.withUnsafeMutableBufferPointer { wk in
            try wv.withUnsafeMutableBufferPointer { wv in
            try wo.withUnsafeMutableBufferPointer { wo in
            try ffnNorm.withUnsafeMutableBufferPointer { fn in
            try gate.withUnsafeMutableBufferPointer { g in
            try up.withUnsafeMutableBufferPointer { u in
            try down.withUnsafeMutableBufferPointer { d in
            try norm.withUnsafeMutableBufferPointer { n in
            try opt(&bq) { bq in try opt(&bk) { bk in try opt(&bv) { bv in
                try body(BalconyGradientPointers(
                    attentionNorm: an.baseAddress!, wq: wq.baseAddress!, wk: wk.baseAddress!, wv: wv.baseAddress!,
                    wo: wo.baseAddress!, ffnNorm: fn.baseAddress!, gate: g.baseAddress!, up: u.baseAddress!,
                    down: d.baseAddress!, norm: n.baseAddress!, bq: bq, bk: bk, bv: bv))
            } } }
            } } } } } } } } }
        }
    }
}
