import Foundation

/// Cosine decay with linear warmup, as Hugging Face's `get_cosine_schedule_with_warmup` (the
/// authors' schedule), with an optional floor:
/// `lr(s) = peak * s / W` for `s < W`, else `min + (peak - min) * (1 + cos(pi * (s - W) / (S - W))) / 2`,
/// where `S` is the total number of steps and `W = ceil(warmupFraction * S)` (Hugging Face's
/// `warmup_ratio` rule). Like Hugging Face, step 0 of a warmup has learning rate 0.
public struct CosineSchedule: Sendable, Equatable {
    public var peakLearningRate: Float
    public var totalSteps: Int
    public var warmupSteps: Int
    public var minimumLearningRate: Float

    public init(peakLearningRate: Float, totalSteps: Int, warmupFraction: Double = 0.01, minimumLearningRate: Float = 0) {
        precondition(totalSteps > 0 && warmupFraction >= 0 && warmupFraction <= 1, "bad schedule")
        self.peakLearningRate = peakLearningRate
        self.totalSteps = totalSteps
        self.warmupSteps = Int((warmupFraction * Double(totalSteps)).rounded(.up))
        self.minimumLearningRate = minimumLearningRate
    }

    /// The learning rate of step `step` (0-based; steps past the end keep the final value).
    public func learningRate(at step: Int) -> Float {
        let peak = Double(peakLearningRate), floor = Double(minimumLearningRate)
        if step < warmupSteps { return Float(peak * Double(step) / Double(max(1, warmupSteps))) }
        let progress = min(1, Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps)))
        return Float(floor + (peak - floor) * 0.5 * (1 + cos(Double.pi * progress)))
    }
}
