/// Training helpers on `BalconyParameters`: resetting gradients in place, and pointer views of
/// every tensor for the kernels.
extension BalconyParameters {
    /// Sets every value to zero in place (gradients between steps), without reallocating.
    public mutating func setToZero() {
        forEachTensor { _, t in t.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
    }
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
    /// Calls `body` with pointers to every tensor; arrays are not copied. (Not `rethrows`: the
    /// rethrowing version of this nest crashed Swift 6.3's release build in LLVM's verifier.)
    func withPointers<R>(_ body: (BalconyWeightPointers) -> R) -> R {
        func opt<T>(_ a: [Float]?, _ f: (UnsafePointer<Float>?) -> T) -> T {
            guard let a else { return f(nil) }
            return a.withUnsafeBufferPointer { f($0.baseAddress!) }
        }
        return attentionNorm.withUnsafeBufferPointer { an in
            wq.withUnsafeBufferPointer { wq in
            wk.withUnsafeBufferPointer { wk in
            wv.withUnsafeBufferPointer { wv in
            wo.withUnsafeBufferPointer { wo in
            ffnNorm.withUnsafeBufferPointer { fn in
            gate.withUnsafeBufferPointer { g in
            up.withUnsafeBufferPointer { u in
            down.withUnsafeBufferPointer { d in
            norm.withUnsafeBufferPointer { n in
            opt(bq) { bq in opt(bk) { bk in opt(bv) { bv in
                body(BalconyWeightPointers(
                    attentionNorm: an.baseAddress!, wq: wq.baseAddress!, wk: wk.baseAddress!, wv: wv.baseAddress!,
                    wo: wo.baseAddress!, ffnNorm: fn.baseAddress!, gate: g.baseAddress!, up: u.baseAddress!,
                    down: d.baseAddress!, norm: n.baseAddress!, bq: bq, bk: bk, bv: bv))
            } } }
            } } } } } } } } }
        }
    }

    /// Calls `body` with mutable pointers to every tensor, in place (no copy when uniquely referenced).
    mutating func withMutablePointers<R>(_ body: (BalconyGradientPointers) -> R) -> R {
        func opt<T>(_ a: inout [Float]?, _ f: (UnsafeMutablePointer<Float>?) -> T) -> T {
            guard a != nil else { return f(nil) }
            return a!.withUnsafeMutableBufferPointer { f($0.baseAddress!) }
        }
        return attentionNorm.withUnsafeMutableBufferPointer { an in
            wq.withUnsafeMutableBufferPointer { wq in
            wk.withUnsafeMutableBufferPointer { wk in
            wv.withUnsafeMutableBufferPointer { wv in
            wo.withUnsafeMutableBufferPointer { wo in
            ffnNorm.withUnsafeMutableBufferPointer { fn in
            gate.withUnsafeMutableBufferPointer { g in
            up.withUnsafeMutableBufferPointer { u in
            down.withUnsafeMutableBufferPointer { d in
            norm.withUnsafeMutableBufferPointer { n in
            opt(&bq) { bq in opt(&bk) { bk in opt(&bv) { bv in
                body(BalconyGradientPointers(
                    attentionNorm: an.baseAddress!, wq: wq.baseAddress!, wk: wk.baseAddress!, wv: wv.baseAddress!,
                    wo: wo.baseAddress!, ffnNorm: fn.baseAddress!, gate: g.baseAddress!, up: u.baseAddress!,
                    down: d.baseAddress!, norm: n.baseAddress!, bq: bq, bk: bk, bv: bv))
            } } }
            } } } } } } } } }
        }
    }
}
