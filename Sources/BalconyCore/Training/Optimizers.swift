import Foundation

/// Updates balcony parameters from their gradients. One optimizer holds the state of every
/// balcony of a run, in the order the trainer lists them. Updates are deterministic.
public protocol BalconyOptimizer: Sendable {
    /// Updates completed so far.
    var step: Int { get }
    /// Applies one update with learning rate `learningRate` (the schedule's value for this step).
    mutating func update(_ parameters: inout [BalconyParameters], gradients: [BalconyParameters], learningRate: Float)
}

extension BalconyParameters {
    /// Calls `body` on the matching tensors of a parameter set, one state set and a gradient
    /// (same shapes), in `forEachTensor` order. Stored properties are accessed directly, never
    /// through key paths, so that the arrays are updated in place.
    static func zipTensors(_ p: inout BalconyParameters, _ s: inout BalconyParameters, _ g: BalconyParameters,
                           _ body: (inout [Float], inout [Float], [Float]) -> Void) {
        precondition((s.bq != nil) == (p.bq != nil) && (g.bq != nil) == (p.bq != nil),
                     "state or gradient disagrees with the parameters on biases")
        body(&p.attentionNorm, &s.attentionNorm, g.attentionNorm)
        body(&p.wq, &s.wq, g.wq)
        body(&p.wk, &s.wk, g.wk)
        body(&p.wv, &s.wv, g.wv)
        body(&p.wo, &s.wo, g.wo)
        body(&p.ffnNorm, &s.ffnNorm, g.ffnNorm)
        body(&p.gate, &s.gate, g.gate)
        body(&p.up, &s.up, g.up)
        body(&p.down, &s.down, g.down)
        body(&p.norm, &s.norm, g.norm)
        if p.bq != nil {
            body(&p.bq!, &s.bq!, g.bq!)
            body(&p.bk!, &s.bk!, g.bk!)
            body(&p.bv!, &s.bv!, g.bv!)
        }
    }

    /// As above with two state sets (Adam's moments).
    static func zipTensors(_ p: inout BalconyParameters, _ m: inout BalconyParameters, _ v: inout BalconyParameters,
                           _ g: BalconyParameters, _ body: (inout [Float], inout [Float], inout [Float], [Float]) -> Void) {
        precondition((m.bq != nil) == (p.bq != nil) && (v.bq != nil) == (p.bq != nil) && (g.bq != nil) == (p.bq != nil),
                     "state or gradient disagrees with the parameters on biases")
        body(&p.attentionNorm, &m.attentionNorm, &v.attentionNorm, g.attentionNorm)
        body(&p.wq, &m.wq, &v.wq, g.wq)
        body(&p.wk, &m.wk, &v.wk, g.wk)
        body(&p.wv, &m.wv, &v.wv, g.wv)
        body(&p.wo, &m.wo, &v.wo, g.wo)
        body(&p.ffnNorm, &m.ffnNorm, &v.ffnNorm, g.ffnNorm)
        body(&p.gate, &m.gate, &v.gate, g.gate)
        body(&p.up, &m.up, &v.up, g.up)
        body(&p.down, &m.down, &v.down, g.down)
        body(&p.norm, &m.norm, &v.norm, g.norm)
        if p.bq != nil {
            body(&p.bq!, &m.bq!, &v.bq!, g.bq!)
            body(&p.bk!, &m.bk!, &v.bk!, g.bk!)
            body(&p.bv!, &m.bv!, &v.bv!, g.bv!)
        }
    }
}

/// AdamW with decoupled weight decay, exactly as PyTorch's `torch.optim.AdamW` (non-amsgrad):
/// `p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²;`
/// `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`. Weight decay applies to every
/// tensor (the authors use 0). Hyperparameters are Doubles, like PyTorch's Python floats: in
/// Float, `1 - 0.999` would be off by 1e-5 relative.
public struct AdamW: BalconyOptimizer {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    public private(set) var step = 0
    /// First and second moments, one `BalconyParameters` each per balcony.
    public private(set) var firstMoments: [BalconyParameters]
    public private(set) var secondMoments: [BalconyParameters]

    /// Zero state for parameters shaped like `parameters`.
    public init(parameters: [BalconyParameters], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = parameters.map { $0.zeros() }
        secondMoments = firstMoments
    }

    /// State restored from a checkpoint (`--resume`): the moments and the number of steps taken.
    public init(parameters: [BalconyParameters], beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double,
                firstMoments: [BalconyParameters], secondMoments: [BalconyParameters], step: Int) {
        self.init(parameters: parameters, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
        self.step = step
    }

    public mutating func update(_ parameters: inout [BalconyParameters], gradients: [BalconyParameters], learningRate lr: Float) {
        precondition(parameters.count == firstMoments.count && gradients.count == parameters.count,
                     "optimizer state is for \(firstMoments.count) balconies")
        step += 1
        // Scalars in Double as PyTorch forms them, rounded once to Float for the element loop.
        let b1 = Float(beta1), b2 = Float(beta2), c1 = Float(1 - beta1), c2 = Float(1 - beta2), eps = Float(epsilon)
        let decay = Float(1 - Double(lr) * weightDecay)
        let stepSize = Float(Double(lr) / (1 - pow(beta1, Double(step))))
        let correction2 = Float((1 - pow(beta2, Double(step))).squareRoot())
        for i in parameters.indices {
            BalconyParameters.zipTensors(&parameters[i], &firstMoments[i], &secondMoments[i], gradients[i]) { p, m, v, g in
                precondition(p.count == g.count, "gradient shape differs from the parameter's")
                let count = p.count
                p.withUnsafeMutableBufferPointer { p in
                    m.withUnsafeMutableBufferPointer { m in
                        v.withUnsafeMutableBufferPointer { v in
                            g.withUnsafeBufferPointer { g in
                                let p = p.baseAddress!, m = m.baseAddress!, v = v.baseAddress!, g = g.baseAddress!
                                // Element-wise, so the thread split cannot change the result.
                                parallelChunks(count, minimumPerThread: 1 << 16) { range in
                                    for j in range {
                                        let gj = g[j]
                                        p[j] *= decay
                                        m[j] = b1 * m[j] + c1 * gj
                                        v[j] = b2 * v[j] + c2 * gj * gj
                                        p[j] -= stepSize * m[j] / (v[j].squareRoot() / correction2 + eps)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Stochastic gradient descent as PyTorch's `torch.optim.SGD` (dampening 0, not Nesterov):
/// `g += wd p; buf = momentum buf + g` (`buf = g` at the first step); `p -= lr buf`.
public struct SGD: BalconyOptimizer {
    public var momentum: Double
    public var weightDecay: Double
    public private(set) var step = 0
    /// Momentum buffers, one per balcony (unused when `momentum` is 0).
    public private(set) var momentumBuffers: [BalconyParameters]

    public init(parameters: [BalconyParameters], momentum: Double = 0, weightDecay: Double = 0) {
        self.momentum = momentum
        self.weightDecay = weightDecay
        momentumBuffers = parameters.map { $0.zeros() }
    }

    /// State restored from a checkpoint: the momentum buffers (nil without momentum) and steps taken.
    public init(parameters: [BalconyParameters], momentum: Double, weightDecay: Double, momentumBuffers: [BalconyParameters]?, step: Int) {
        self.init(parameters: parameters, momentum: momentum, weightDecay: weightDecay)
        if let momentumBuffers { self.momentumBuffers = momentumBuffers }
        self.step = step
    }

    public mutating func update(_ parameters: inout [BalconyParameters], gradients: [BalconyParameters], learningRate lr: Float) {
        precondition(parameters.count == momentumBuffers.count && gradients.count == parameters.count,
                     "optimizer state is for \(momentumBuffers.count) balconies")
        let mu = Float(momentum), wd = Float(weightDecay), first = step == 0
        step += 1
        for i in parameters.indices {
            BalconyParameters.zipTensors(&parameters[i], &momentumBuffers[i], gradients[i]) { p, buf, g in
                precondition(p.count == g.count, "gradient shape differs from the parameter's")
                p.withUnsafeMutableBufferPointer { p in
                    buf.withUnsafeMutableBufferPointer { b in
                        g.withUnsafeBufferPointer { g in
                            for j in 0..<p.count {
                                var d = g[j] + wd * p[j]
                                if mu != 0 {
                                    b[j] = first ? d : mu * b[j] + d
                                    d = b[j]
                                }
                                p[j] -= lr * d
                            }
                        }
                    }
                }
            }
        }
    }
}
