import Foundation

/// Global-norm gradient clipping across every balcony, as PyTorch's `clip_grad_norm_`.
public enum GradientClipping {
    /// The L2 norm of all gradients together, accumulated in Double in a fixed order.
    public static func globalNorm(_ gradients: [BalconyParameters]) -> Double {
        var sum = 0.0
        for g in gradients {
            g.visitTensors { _, t in
                t.withUnsafeBufferPointer { b in
                    // Four accumulators break the dependency chain; the order stays fixed.
                    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                    var j = 0
                    while j + 4 <= b.count {
                        s0 += Double(b[j]) * Double(b[j])
                        s1 += Double(b[j + 1]) * Double(b[j + 1])
                        s2 += Double(b[j + 2]) * Double(b[j + 2])
                        s3 += Double(b[j + 3]) * Double(b[j + 3])
                        j += 4
                    }
                    while j < b.count {
                        s0 += Double(b[j]) * Double(b[j])
                        j += 1
                    }
                    sum += (s0 + s1) + (s2 + s3)
                }
            }
        }
        return sum.squareRoot()
    }

    /// Scales all gradients by `maxNorm / (norm + 1e-6)` when that is below 1; returns the norm
    /// before clipping (for logs).
    @discardableResult
    public static func clip(_ gradients: inout [BalconyParameters], maxNorm: Double) -> Double {
        let norm = globalNorm(gradients)
        let scale = maxNorm / (norm + 1e-6)
        if scale < 1 {
            let f = Float(scale)
            for i in gradients.indices {
                gradients[i].forEachTensor { _, t in
                    t.withUnsafeMutableBufferPointer { b in for j in b.indices { b[j] *= f } }
                }
            }
        }
        return norm
    }
}
