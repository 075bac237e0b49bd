import Foundation
import Testing
@testable import BalconyCore

/// An independent Double-precision reference of the training math, written naively from
/// DESIGN.md ("The math") with plain loops, for finite-difference gradient checks. Central
/// differences of a Double function with h = 1e-5 carry errors near 1e-10 (truncation h² and
/// rounding 1e-16 / h), far below the Float rounding of the code under test, so the tolerances
/// of the checks below are set by Float arithmetic alone.
enum TrainingReference {
    typealias Tensors = [String: [Double]]

    static let attentionNorm = "0.input_layernorm.weight", wq = "0.self_attn.q_proj.weight"
    static let wk = "0.self_attn.k_proj.weight", wv = "0.self_attn.v_proj.weight", wo = "0.self_attn.o_proj.weight"
    static let ffnNorm = "0.post_attention_layernorm.weight", gate = "0.mlp.gate_proj.weight"
    static let up = "0.mlp.up_proj.weight", down = "0.mlp.down_proj.weight", exitNorm = "1.weight"
    static let bq = "0.self_attn.q_proj.bias", bk = "0.self_attn.k_proj.bias", bv = "0.self_attn.v_proj.bias"

    /// Every tensor of `p` in Double, by its name.
    static func tensors(_ p: BalconyParameters) -> Tensors {
        var t = Tensors()
        p.visitTensors { name, v in t[name] = v.map(Double.init) }
        return t
    }

    static func rmsNorm(_ x: [Double], _ w: [Double], rows: Int, n: Int, eps: Double) -> [Double] {
        var out = x
        for r in 0..<rows {
            var ss = 0.0
            for i in 0..<n { ss += x[r * n + i] * x[r * n + i] }
            let inv = 1 / (ss / Double(n) + eps).squareRoot()
            for i in 0..<n { out[r * n + i] = x[r * n + i] * inv * w[i] }
        }
        return out
    }

    /// `x[rows, inF] · W[outF, inF]^T (+ bias)`.
    static func linear(_ x: [Double], _ w: [Double], bias: [Double]? = nil, rows: Int, inF: Int, outF: Int) -> [Double] {
        // Pointers only to keep debug builds fast; the arithmetic is the plain triple loop.
        var y = [Double](repeating: 0, count: rows * outF)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    for r in 0..<rows {
                        for o in 0..<outF {
                            var s = bias?[o] ?? 0
                            for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
                            y[r * outF + o] = s
                        }
                    }
                }
            }
        }
        return y
    }

    /// RoPE of rows at positions `row % tokens`; angles as the Float code forms them.
    static func rope(_ x: [Double], rows: Int, tokens: Int, heads: Int, config c: LlamaConfig) -> [Double] {
        let inv = c.ropeInverseFrequencies(), hd = c.headDim, half = hd / 2
        var y = x
        for r in 0..<rows {
            for h in 0..<heads {
                for i in 0..<half {
                    let angle = Double(Float(r % tokens) * inv[i])
                    let (ia, ib) = c.ropeStyle == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                    let base = r * heads * hd + h * hd
                    let a = x[base + ia], b = x[base + ib]
                    y[base + ia] = a * cos(angle) - b * sin(angle)
                    y[base + ib] = a * sin(angle) + b * cos(angle)
                }
            }
        }
        return y
    }

    /// Causal GQA attention within each of `sequences` sequences.
    static func attention(q: [Double], k: [Double], v: [Double], sequences: Int, tokens: Int, config c: LlamaConfig) -> [Double] {
        let hd = c.headDim, group = c.headCount / c.kvHeadCount
        var out = [Double](repeating: 0, count: sequences * tokens * c.qDim)
        var scores = [Double](repeating: 0, count: tokens)
        // Pointers only to keep debug builds fast; the arithmetic is the plain loops.
        q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
        out.withUnsafeMutableBufferPointer { out in scores.withUnsafeMutableBufferPointer { scores in
            for s in 0..<sequences {
                for h in 0..<c.headCount {
                    let kvh = h / group
                    for t in 0..<tokens {
                        let qi = (s * tokens + t) * c.qDim + h * hd
                        var m = -Double.infinity
                        for j in 0...t {
                            let ki = (s * tokens + j) * c.kvDim + kvh * hd
                            var d = 0.0
                            for i in 0..<hd { d += q[qi + i] * k[ki + i] }
                            scores[j] = d / Double(hd).squareRoot()
                            m = max(m, scores[j])
                        }
                        var z = 0.0
                        for j in 0...t {
                            scores[j] = exp(scores[j] - m)
                            z += scores[j]
                        }
                        for j in 0...t {
                            let vi = (s * tokens + j) * c.kvDim + kvh * hd
                            for i in 0..<hd { out[qi + i] += scores[j] / z * v[vi + i] }
                        }
                    }
                }
            }
        } }
        } } }
        return out
    }

    static func silu(_ g: Double) -> Double { g / (1 + exp(-g)) }

    /// The balcony decoder layer over `x[sequences * tokens, dim]`.
    static func layer(_ t: Tensors, x: [Double], sequences: Int, tokens: Int, config c: LlamaConfig) -> [Double] {
        let n = sequences * tokens, eps = Double(c.normEps)
        let xn = rmsNorm(x, t[attentionNorm]!, rows: n, n: c.dim, eps: eps)
        var q = linear(xn, t[wq]!, bias: t[bq], rows: n, inF: c.dim, outF: c.qDim)
        var k = linear(xn, t[wk]!, bias: t[bk], rows: n, inF: c.dim, outF: c.kvDim)
        let v = linear(xn, t[wv]!, bias: t[bv], rows: n, inF: c.dim, outF: c.kvDim)
        q = rope(q, rows: n, tokens: tokens, heads: c.headCount, config: c)
        k = rope(k, rows: n, tokens: tokens, heads: c.kvHeadCount, config: c)
        let att = attention(q: q, k: k, v: v, sequences: sequences, tokens: tokens, config: c)
        let o = linear(att, t[wo]!, rows: n, inF: c.qDim, outF: c.dim)
        let h2 = zip(x, o).map { $0 + $1 }
        let xn2 = rmsNorm(h2, t[ffnNorm]!, rows: n, n: c.dim, eps: eps)
        let g = linear(xn2, t[gate]!, rows: n, inF: c.dim, outF: c.hiddenDim)
        let u = linear(xn2, t[up]!, rows: n, inF: c.dim, outF: c.hiddenDim)
        let a = zip(g, u).map { silu($0) * $1 }
        let d = linear(a, t[down]!, rows: n, inF: c.hiddenDim, outF: c.dim)
        return zip(h2, d).map { $0 + $1 }
    }

    static func logSoftmax(_ z: [Double]) -> [Double] {
        let m = z.max()!
        let lse = m + log(z.reduce(0) { $0 + exp($1 - m) })
        return z.map { $0 - lse }
    }

    /// Mean over exits of the mean over rows of `T² KL(p_T || q_T) + w CE`.
    static func exitLoss(teacher: [Double], exitHidden: [[Double]], exitNorms: [[Double]], head: [Double],
                         rows: Int, config c: LlamaConfig, temperature tau: Double, crossEntropyWeight w: Double,
                         targets: [Int]?) -> Double {
        let zt = linear(teacher, head, rows: rows, inF: c.dim, outF: c.vocabSize)
        var total = 0.0
        for (hidden, norm) in zip(exitHidden, exitNorms) {
            let zs = linear(rmsNorm(hidden, norm, rows: rows, n: c.dim, eps: Double(c.normEps)), head,
                            rows: rows, inF: c.dim, outF: c.vocabSize)
            var sum = 0.0
            for r in 0..<rows {
                let row = (r * c.vocabSize)..<((r + 1) * c.vocabSize)
                let lp = logSoftmax(zt[row].map { $0 / tau }), lq = logSoftmax(zs[row].map { $0 / tau })
                var kl = 0.0
                for v in 0..<c.vocabSize { kl += exp(lp[v]) * (lp[v] - lq[v]) }
                sum += tau * tau * kl
                if let targets, targets[r] >= 0 { sum -= w * logSoftmax(Array(zs[row]))[targets[r]] }
            }
            total += sum / Double(rows)
        }
        return total / Double(exitHidden.count)
    }

    /// Central difference of `f` at `x[i]` in Double.
    static func centralDifference(_ x: [Double], _ i: Int, h: Double = 1e-5, _ f: ([Double]) -> Double) -> Double {
        var a = x, b = x
        a[i] += h
        b[i] -= h
        return (f(a) - f(b)) / (2 * h)
    }
}

/// Compares analytic Float gradients with central differences of a Double reference.
struct GradientCheck {
    /// Relative tolerance on each entry, against the largest finite difference of the tensor
    /// (Float gradients carry rounding errors relative to the tensor's scale, not each entry's).
    /// Observed errors are near 1e-7 (Float rounding, a few ulps); 1e-5 leaves a 100x margin and
    /// still catches any real mistake, which is off by O(1) (see gradientCheckRejectsASmallError).
    var tolerance: Double = 1e-5
    private(set) var worst: (name: String, error: Double) = ("", 0)
    private(set) var failures: [String] = []

    /// Checks `analytic[i]` against `numeric(i)` for the given indices.
    mutating func check(_ name: String, analytic: [Float], indices: [Int], numeric: (Int) -> Double) {
        let fd = indices.map(numeric)
        let scale = max(fd.map(abs).max() ?? 0, 1e-3)
        for (i, n) in zip(indices, fd) {
            let err = abs(Double(analytic[i]) - n) / scale
            if err > worst.error { worst = (name, err) }
            if err > tolerance { failures.append("\(name)[\(i)]: analytic \(analytic[i]) vs numeric \(n) (rel err \(err))") }
        }
    }

    /// Checks the directional derivative along `direction`: `sum(analytic * direction)` against
    /// the central difference of `f(x + h direction)`. One check covers every entry at once;
    /// the error is measured against `sum |analytic * direction|`.
    mutating func checkDirection(_ name: String, analytic: [Float], direction: [Double], x: [Double],
                                 _ f: ([Double]) -> Double) {
        let h = 1e-5
        let plus = f(zip(x, direction).map { $0 + h * $1 }), minus = f(zip(x, direction).map { $0 - h * $1 })
        let numeric = (plus - minus) / (2 * h)
        let a = zip(analytic, direction).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        let scale = max(zip(analytic, direction).reduce(0.0) { $0 + abs(Double($1.0) * $1.1) }, 1e-6)
        let err = abs(a - numeric) / scale
        if err > worst.error { worst = (name, err) }
        if err > tolerance { failures.append("\(name) along a random direction: analytic \(a) vs numeric \(numeric) (rel err \(err))") }
    }

    /// Records the result with Swift Testing.
    func expectPassed(sourceLocation: SourceLocation = #_sourceLocation) {
        if ProcessInfo.processInfo.environment["BALCONY_GRADCHECK_VERBOSE"] != nil {
            print("gradient check \(sourceLocation.fileName):\(sourceLocation.line): worst \(worst.name) \(worst.error)")
        }
        #expect(failures.isEmpty, "\(failures.prefix(8).joined(separator: "\n"))", sourceLocation: sourceLocation)
    }
}

/// Random test data.
struct TestRandom {
    var lcg: TinyModels.LCG
    init(seed: UInt64) { lcg = TinyModels.LCG(state: seed) }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { lcg.values(n, scale: scale) }
    /// `count` distinct indices in `0 ..< n` (all of them when `count >= n`), always including the ends.
    mutating func indices(_ n: Int, count: Int) -> [Int] {
        if count >= n { return Array(0..<n) }
        var set: Set<Int> = [0, n - 1]
        while set.count < count { set.insert(Int((lcg.next() + 1) / 2 * Float(n)) % n) }
        return set.sorted()
    }
    /// Random balcony parameters: weights ~ U(-0.3, 0.3), norms near 1, biases small.
    mutating func parameters(_ c: LlamaConfig, exit: Int = 1) -> BalconyParameters {
        var p = BalconyParameters.randomInitialized(config: c, exit: exit, seed: 1)
        p.forEachTensor { name, t in
            if name.hasSuffix("norm.weight") || name == "1.weight" || name.hasSuffix("layernorm.weight") {
                t = floats(t.count, scale: 0.2).map { 1 + $0 }
            } else if name.hasSuffix("bias") {
                t = floats(t.count, scale: 0.2)
            } else {
                t = floats(t.count, scale: 0.3)
            }
        }
        return p
    }
}
