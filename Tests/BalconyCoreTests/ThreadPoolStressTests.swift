import CKernels
import Foundation
import Testing

/// The worker pool of `CKernels/thread_pool.c` under jobs whose thread counts alternate, so that
/// workers that sat one job out meet the next job while it is being posted (issue 16, defect 4).
/// Each index of each job must run exactly once, and no worker may touch a job after its caller
/// returned. Run it under ThreadSanitizer too:
/// `swift test --sanitize=thread --filter ThreadPoolStressTests`.
@Suite struct ThreadPoolStressTests {
    /// One job's tally: `runs[i]` counts the calls with index i. Lives on the caller's stack, as
    /// the kernels' jobs do, so a worker that runs a chunk late (after its caller returned) counts
    /// into the next job's tally at the same address and shows up there.
    struct Tally {
        var runs: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    static let task: balcony_task_fn = { context, index in
        let tally = context!.assumingMemoryBound(to: Tally.self)
        withUnsafeMutableBytes(of: &tally.pointee.runs) { raw in
            let counts = raw.baseAddress!.assumingMemoryBound(to: Int.self)
            _ = balcony_atomic_fetch_add(counts + Int(index), 1)
        }
    }

    @Test func everyIndexRunsExactlyOnceWhileThreadCountsAlternate() {
        // Large jobs after small ones: the workers past the small job's count sat it out and are
        // spinning or waking when the next job is posted.
        let pattern = [2, 8, 3, 6, 1, 5, 2, 7, 4, 8]
        var ran = 0
        var wrong: [String] = []
        for iteration in 0..<3000 {
            let threads = pattern[iteration % pattern.count]
            var tally = Tally()
            // Other tests may hold the pool; wait for it rather than skipping the job.
            while balcony_pool_run(Int32(threads), Self.task, &tally) == 0 { sched_yield() }
            ran += 1
            let counts = withUnsafeBytes(of: tally.runs) { Array($0.bindMemory(to: Int.self)) }
            let expected = (0..<16).map { $0 < threads ? 1 : 0 }
            if counts != expected {
                wrong.append("job \(iteration) with \(threads) threads ran indices \(counts)")
                if wrong.count > 5 { break }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
        #expect(ran > 0)
    }
}
