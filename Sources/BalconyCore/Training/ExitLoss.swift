import CKernels
import Foundation

/// Settings of the self-distillation loss (see DESIGN.md, "The math").
public struct DistillationOptions: Sendable, Equatable {
    /// Temperature T: both logits are divided by T and the KL term is multiplied by T².
    public var temperature: Float
    /// Weight w of the cross-entropy of each exit on the data's next tokens (the authors use 0).
    /// The cross-entropy uses the untempered logits.
    public var crossEntropyWeight: Float
    /// Rows per chunk of the loss; nil chooses about 16 Mi floats of logits per chunk
    /// (clamped to 8 ... 256 rows). Results do not depend on it beyond rounding.
    public var chunkRows: Int?

    public init(temperature: Float = 1, crossEntropyWeight: Float = 0, chunkRows: Int? = nil) {
        precondition(temperature > 0, "temperature must be positive")
        self.temperature = temperature
        self.crossEntropyWeight = crossEntropyWeight
        self.chunkRows = chunkRows
    }
}

/// What one evaluation of the exit loss measured.
public struct ExitLossResult: Sendable, Equatable {
    /// The training loss: mean over exits of `exitLosses`.
    public var loss: Double
    /// Per exit: mean over all tokens of `T² KL(p_T || q_T) + w CE` (tokens without a target add
    /// no cross-entropy but still count in the mean).
    public var exitLosses: [Double]
    /// Per exit: mean over tokens of the plain `KL(p || q)` at temperature 1, the quantity the
    /// paper reports whatever T is.
    public var klDivergence: [Double]
    /// Per exit: mean cross-entropy (temperature 1) over the tokens that have a target; 0 when no
    /// targets were given.
    public var crossEntropy: [Double]
    /// Tokens that had a target.
    public var targetCount: Int
}

/// The self-distillation loss of all exits at once, with its gradients:
/// `loss = mean_exits mean_tokens [T² KL(softmax(z/T) || softmax(z_k/T)) + w CE(z_k, target)]`, with
/// teacher logits `z = W_out · h` (h: the teacher's final hidden state after the final norm) and
/// exit logits `z_k = W_out · RMSNorm^B_k(b_k)` (b_k: balcony k's layer output).
///
/// Rows are processed in chunks: a chunk stacks the teacher's rows and every exit's normalized
/// rows into one matrix and multiplies it by `W_out` once (one SGEMM for F32 heads; one pass of
/// widened tiles for Q8_0), so teacher logits are computed once and shared by the exits and
/// nothing of size rows x vocab x exits is allocated. The gradient w.r.t. the logits replaces
/// them in place and goes back through `W_out` and the exit norm.
///
/// Memory: about `chunk * vocab * (exits + 2)` floats (`+ 2` more chunk x vocab when T != 1) per
/// worker (one per compute thread, each taking every other chunk), plus a few floats per chunk;
/// reused across calls. Not thread-safe.
public final class ExitLoss {
    public let config: LlamaConfig
    private var workers: [Worker] = []
    private let norms = TrainingBuffer()       // [E, dim]  exit norm weights
    private let normGrads = TrainingBuffer()   // [chunks, E, dim]  exit norm weight gradients per chunk
    private var chunkTotals: [Double] = []     // [chunks, 3, E]  loss, plain KL, CE sums per chunk
    private var normGradChunks = 0

    /// One thread's buffers for the chunks it processes.
    private final class Worker {
        let stacked = TrainingBuffer()     // [(E+1) * chunk, dim]  teacher rows, then each exit's normed rows
        let logits = TrainingBuffer()      // [(E+1) * chunk, vocab] logits; teacher log-probs; exit logit gradients
        let teacherProbs = TrainingBuffer()    // [chunk, vocab]  p_T
        let teacherLogP1 = TrainingBuffer()    // [chunk, vocab]  log p at T = 1 (only when T != 1)
        let teacherProbs1 = TrainingBuffer()   // [chunk, vocab]  p at T = 1 (only when T != 1)
        let invRms = TrainingBuffer()      // [E * chunk]  exit norm 1/rms
        let dNormed = TrainingBuffer()     // [E * chunk, dim]  gradient w.r.t. the normed exit rows
        let tile = TrainingBuffer()        // [tileRows, dim]  widened rows of a Q8_0, F16 or BF16 W_out
        var rowStats: [Double] = []        // [3, E, chunk]  per-row loss, plain KL, CE

        var buffers: [TrainingBuffer] { [stacked, logits, teacherProbs, teacherLogP1, teacherProbs1, invRms, dNormed, tile] }
    }

    /// Rows of `W_out` widened at a time for a Q8_0 head's backward product (the reduction
    /// dimension of that SGEMM, so larger than the forward's tiles).
    static let tileRows = 256

    public init(config: LlamaConfig) {
        self.config = config
    }

    /// Bytes held by the workspace's buffers.
    public var byteCount: Int {
        workers.reduce(0) { $0 + $1.buffers.reduce(0) { $0 + 4 * $1.capacity } + 8 * $1.rowStats.count }
            + 4 * (norms.capacity + normGrads.capacity) + 8 * chunkTotals.count
    }

    /// The loss without gradients (evaluation).
    public func loss(teacher: UnsafePointer<Float>, rows: Int, exitHidden: [UnsafePointer<Float>],
                     parameters: [BalconyParameters], head: WeightMatrix, targets: [Int]? = nil,
                     options: DistillationOptions = .init()) -> ExitLossResult {
        run(teacher: teacher, rows: rows, exitHidden: exitHidden, parameters: parameters, head: head,
            targets: targets, options: options, hiddenGradients: nil)
    }

    /// The loss and its gradients.
    /// - Parameters:
    ///   - teacher: `[rows, dim]`, the full model's last hidden state after its final norm.
    ///   - exitHidden: per exit, `[rows, dim]`, the balcony layer's output (before the exit norm).
    ///   - parameters: per exit, the balcony's weights (only the exit norm `norm` is read).
    ///   - head: the frozen output matrix `W_out` `[vocab, dim]`, F32, 16-bit or quantized.
    ///   - targets: `rows` next-token ids for the cross-entropy term, -1 where there is none.
    ///   - hiddenGradients: per exit, `[rows, dim]`, overwritten with d loss / d exitHidden.
    ///   - gradients: per exit, the exit norm's weight gradient is added into `norm`.
    public func lossAndGradients(teacher: UnsafePointer<Float>, rows: Int, exitHidden: [UnsafePointer<Float>],
                                 parameters: [BalconyParameters], head: WeightMatrix, targets: [Int]? = nil,
                                 options: DistillationOptions = .init(),
                                 hiddenGradients: [UnsafeMutablePointer<Float>],
                                 gradients: inout [BalconyParameters]) -> ExitLossResult {
        precondition(hiddenGradients.count == exitHidden.count && gradients.count == exitHidden.count,
                     "one gradient per exit")
        let result = run(teacher: teacher, rows: rows, exitHidden: exitHidden, parameters: parameters, head: head,
                         targets: targets, options: options, hiddenGradients: hiddenGradients)
        for e in 0..<exitHidden.count {
            gradients[e].norm.withUnsafeMutableBufferPointer { g in
                // Chunk by chunk in order: the sum does not depend on which thread ran which chunk.
                for k in 0..<normGradChunks {
                    let src = normGrads.pointer + (k * exitHidden.count + e) * config.dim
                    for i in 0..<config.dim { g[i] += src[i] }
                }
            }
        }
        return result
    }

    // The shared implementation; norm gradients are left in `normGrads`.
    private func run(teacher: UnsafePointer<Float>, rows n: Int, exitHidden: [UnsafePointer<Float>],
                     parameters: [BalconyParameters], head: WeightMatrix, targets: [Int]?,
                     options o: DistillationOptions, hiddenGradients: [UnsafeMutablePointer<Float>]?) -> ExitLossResult {
        let exits = exitHidden.count, dim = config.dim, vocab = config.vocabSize
        precondition(exits > 0 && parameters.count == exits, "one set of parameters per exit")
        precondition(head.rows == vocab && head.cols == dim, "head shape \(head.rows)x\(head.cols) is not vocab x dim")
        if let targets {
            precondition(targets.count == n, "one target per row")
            precondition(targets.allSatisfy { $0 >= -1 && $0 < vocab }, "target outside the vocabulary")
        }
        let chunk = max(1, min(n, o.chunkRows ?? max(8, min(256, (16 << 20) / ((exits + 1) * vocab)))))
        let chunks = (n + chunk - 1) / chunk
        let tempered = o.temperature != 1
        // Chunks are independent until their sums: one worker per thread, each with its own
        // buffers, takes chunks w, w + workers, ...; sums are formed chunk by chunk in order.
        let workerCount = min(ComputeThreads.count, chunks)
        while workers.count < workerCount { workers.append(Worker()) }
        for w in workers.prefix(workerCount) {
            w.stacked.reserve((exits + 1) * chunk * dim)
            w.logits.reserve((exits + 1) * chunk * vocab)
            w.teacherProbs.reserve(chunk * vocab)
            if tempered {
                w.teacherLogP1.reserve(chunk * vocab)
                w.teacherProbs1.reserve(chunk * vocab)
            }
            w.invRms.reserve(exits * chunk)
            w.dNormed.reserve(exits * chunk * dim)
            if head.type != .f32 { w.tile.reserve(Self.tileRows * dim) }
            if w.rowStats.count < 3 * exits * chunk { w.rowStats = [Double](repeating: 0, count: 3 * exits * chunk) }
        }
        norms.reserve(exits * dim)
        normGrads.reserve(chunks * exits * dim).update(repeating: 0, count: chunks * exits * dim)
        normGradChunks = chunks
        chunkTotals = [Double](repeating: 0, count: chunks * 3 * exits)
        for (e, p) in parameters.enumerated() {
            precondition(p.norm.count == dim, "exit norm has \(p.norm.count) values, not \(dim)")
            p.norm.withUnsafeBufferPointer { self.norms.pointer.advanced(by: e * dim).update(from: $0.baseAddress!, count: dim) }
        }

        let rowTerms = RowTerms(temperature: o.temperature, crossEntropyWeight: o.crossEntropyWeight,
                                gradientScale: 1 / (Float(exits) * Float(n)), vocab: vocab)
        let norms = UnsafePointer(self.norms.pointer), normGrads = self.normGrads.pointer
        chunkTotals.withUnsafeMutableBufferPointer { totalsBuffer in
            let chunkTotals = totalsBuffer.baseAddress!
            parallelTasks(workerCount) { wi in
                let w = workers[wi]
                for k in stride(from: wi, to: chunks, by: workerCount) {
                    let lo = k * chunk, c = min(chunk, n - lo)
                    // Stack teacher rows and normed exit rows, then one product with W_out.
                    w.stacked.pointer.update(from: teacher + lo * dim, count: c * dim)
                    for e in 0..<exits {
                        TrainingKernels.rmsNorm(exitHidden[e] + lo * dim, weight: norms + e * dim,
                                                out: w.stacked.pointer + (1 + e) * c * dim, invRms: w.invRms.pointer + e * c,
                                                rows: c, n: dim, eps: config.normEps)
                    }
                    Linear.forwardFloatActivations(head, x: w.stacked.pointer, tokens: (exits + 1) * c, y: w.logits.pointer)
                    teacherDistributions(w, rows: c, temperature: o.temperature)
                    exitTerms(w, rows: c, exits: exits, first: lo, targets: targets, terms: rowTerms,
                              gradients: hiddenGradients != nil)
                    // Sum the per-row terms in a fixed order: the result does not depend on threads.
                    for s in 0..<3 {
                        for e in 0..<exits {
                            var acc = 0.0
                            for r in 0..<c { acc += w.rowStats[(s * exits + e) * c + r] }
                            chunkTotals[(k * 3 + s) * exits + e] = acc
                        }
                    }
                    if let hiddenGradients {
                        backwardThroughHead(w, head, rows: c, exits: exits)
                        for e in 0..<exits {
                            TrainingKernels.rmsNormBackward(exitHidden[e] + lo * dim, invRms: w.invRms.pointer + e * c,
                                                            weight: norms + e * dim, dOut: w.dNormed.pointer + e * c * dim,
                                                            rows: c, n: dim, dWeight: normGrads + (k * exits + e) * dim,
                                                            dX: hiddenGradients[e] + lo * dim, accumulate: false)
                        }
                    }
                }
            }
        }
        var totals = [Double](repeating: 0, count: 3 * exits)   // loss, plain KL, CE sums per exit
        for k in 0..<chunks {
            for i in 0..<(3 * exits) { totals[i] += chunkTotals[k * 3 * exits + i] }
        }
        let targetCount = targets?.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } ?? 0
        let exitLosses = (0..<exits).map { totals[$0] / Double(n) }
        return ExitLossResult(
            loss: exitLosses.reduce(0, +) / Double(exits), exitLosses: exitLosses,
            klDivergence: (0..<exits).map { totals[exits + $0] / Double(n) },
            crossEntropy: (0..<exits).map { targetCount > 0 ? totals[2 * exits + $0] / Double(targetCount) : 0 },
            targetCount: targetCount)
    }

    /// Turns the teacher block of `logits` (`rows` rows) into log p_T in place, p_T into
    /// `teacherProbs`, and at T != 1 log p and p at temperature 1 into their buffers.
    private func teacherDistributions(_ w: Worker, rows c: Int, temperature: Float) {
        let vocab = config.vocabSize, tempered = temperature != 1, invT = 1 / temperature
        let z = w.logits.pointer, pT = w.teacherProbs.pointer, lp1 = w.teacherLogP1.pointer, p1 = w.teacherProbs1.pointer
        parallelChunks(c, minimumPerThread: max(1, 8192 / vocab)) { range in
            for r in range {
                let o = r * vocab
                balcony_teacher_row(z + o, vocab, invT, z + o, pT + o, tempered ? lp1 + o : nil, tempered ? p1 + o : nil)
            }
        }
    }

    /// The constants of one evaluation that every row needs.
    private struct RowTerms {
        var temperature: Float
        var crossEntropyWeight: Float
        /// 1 / (exits * rows): the means over tokens and exits, folded into the logit gradients.
        var gradientScale: Float
        var vocab: Int
    }

    /// Per exit and row: the loss terms into `rowStats`, and (with `gradients`) the gradient
    /// w.r.t. the exit's logits in place of them:
    /// `d/dz_k = scale * (T (q_T - p_T) + w (q - onehot(target)))`, the `w` term only on rows
    /// that have a target.
    private func exitTerms(_ worker: Worker, rows c: Int, exits: Int, first: Int, targets: [Int]?, terms t: RowTerms,
                           gradients: Bool) {
        let vocab = t.vocab, tempered = t.temperature != 1
        let tau = t.temperature, w = t.crossEntropyWeight, scale = t.gradientScale
        if worker.rowStats.count < 3 * exits * c { worker.rowStats = [Double](repeating: 0, count: 3 * exits * c) }
        let teacherLogP = UnsafePointer(worker.logits.pointer), z = worker.logits.pointer + c * vocab
        let pT = UnsafePointer(worker.teacherProbs.pointer)
        let lp1 = UnsafePointer(worker.teacherLogP1.pointer), p1 = UnsafePointer(worker.teacherProbs1.pointer)
        worker.rowStats.withUnsafeMutableBufferPointer { statsBuffer in
            let stats = statsBuffer.baseAddress!
            targets.withUnsafeOptionalBuffer { targetBuffer in
                parallelChunks(exits * c, minimumPerThread: max(1, 8192 / vocab)) { range in
                    // (z - max) / T of the row at hand.
                    let u = UnsafeMutablePointer<Float>.allocate(capacity: vocab)
                    defer { u.deallocate() }
                    for item in range {
                        let e = item / c, r = item % c, o = r * vocab
                        let target = targetBuffer.map { $0[first + r] } ?? -1
                        let zr = z + item * vocab
                        var kl = 0.0, kl1 = 0.0
                        var logZ1: Float = 0
                        balcony_exit_row(zr, vocab, teacherLogP + o, pT + o, tempered ? lp1 + o : nil, tempered ? p1 + o : nil,
                                         tau, target >= 0 ? w : 0, scale, gradients ? 1 : 0, u, &kl, &kl1, &logZ1)
                        var ce = 0.0
                        if target >= 0 {
                            ce = Double(logZ1 - u[target] * tau)
                            if gradients { zr[target] -= scale * w }
                        }
                        stats[e * c + r] = Double(tau * tau) * kl + Double(w) * ce
                        stats[(exits + e) * c + r] = kl1
                        stats[(2 * exits + e) * c + r] = ce
                    }
                }
            }
        }
    }

    /// `dNormed[E * rows, dim] = dLogits[E * rows, vocab] · W_out`, widening a head that is not F32 tile by tile.
    private func backwardThroughHead(_ w: Worker, _ head: WeightMatrix, rows c: Int, exits: Int) {
        let vocab = config.vocabSize, dim = config.dim
        let dLogits = w.logits.pointer + c * vocab, dNormed = w.dNormed, tile = w.tile
        switch head.type {
        case .f32:
            BLAS.gemmNN(m: exits * c, n: dim, k: vocab, a: dLogits, lda: vocab, b: head.f32, ldb: dim,
                        c: dNormed.pointer, ldc: dim)
        default:
            var lo = 0
            while lo < vocab {
                let hi = min(vocab, lo + Self.tileRows)
                head.widenRows(lo, hi, into: tile.pointer)
                BLAS.gemmNN(m: exits * c, n: dim, k: hi - lo, a: dLogits + lo, lda: vocab, b: tile.pointer, ldb: dim,
                            c: dNormed.pointer, ldc: dim, beta: lo == 0 ? 0 : 1)
                lo = hi
            }
        }
    }
}

extension Optional where Wrapped == [Int] {
    /// Calls `body` with the array's buffer, or nil.
    fileprivate func withUnsafeOptionalBuffer<R>(_ body: (UnsafeBufferPointer<Int>?) -> R) -> R {
        guard let self else { return body(nil) }
        return self.withUnsafeBufferPointer { body($0) }
    }
}
