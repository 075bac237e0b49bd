import CKernels
import Foundation
import Testing

/// The pool's test hook (thread_pool.c; not in ckernels.h, which the kernels own).
@_silgen_name("balcony_pool_set_test_hook")
private func setPoolTestHook(_ hook: (@convention(c) (Int32, Int32) -> Void)?)

/// The worker pool of `CKernels/thread_pool.c` under jobs whose thread counts alternate, so that
/// workers that sat one job out meet the next job while it is being posted (issue 16, defect 4).
/// Each index of each job must run exactly once. Run it under ThreadSanitizer too:
/// `swift test --sanitize=thread --filter ThreadPoolStressTests`.
@Suite(.serialized) struct ThreadPoolStressTests {
    /// One job's tally: `runs[i]` counts the calls with index i. Lives on the caller's stack, as
    /// the kernels' jobs do, so a worker that runs a chunk late (after its caller returned) counts
    /// into the next job's tally at the same address and shows up there.
    struct Tally {
        var runs: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Counts through a plain pointer with C atomics only: a Swift `&tally.pointee.runs` would be
    /// a modifying access of the whole tuple from every thread at once, which ThreadSanitizer
    /// rightly reports (the counts sit at offset 0 of the tally, its only field).
    static let task: balcony_task_fn = { context, index in
        let counts = context!.assumingMemoryBound(to: Int.self)
        _ = balcony_atomic_fetch_add(counts + Int(index), 1)
    }

    /// Runs `jobs` jobs cycling through `pattern` thread counts; returns the jobs whose indices did
    /// not each run exactly once.
    static func run(jobs: Int, pattern: [Int]) -> [String] {
        var wrong: [String] = []
        for iteration in 0..<jobs {
            let threads = pattern[iteration % pattern.count]
            var tally = Tally()
            // Other tests may hold the pool; wait for it rather than skipping the job.
            while balcony_pool_run(Int32(threads), Self.task, &tally) == 0 { sched_yield() }
            let counts = withUnsafeBytes(of: tally.runs) { Array($0.bindMemory(to: Int.self)) }
            if counts != (0..<16).map({ $0 < threads ? 1 : 0 }) {
                wrong.append("job \(iteration) with \(threads) threads ran indices \(counts)")
                if wrong.count > 5 { break }
            }
        }
        return wrong
    }

    @Test func everyIndexRunsExactlyOnceWhileThreadCountsAlternate() {
        // Large jobs after small ones: the workers past the small job's count sat it out and are
        // spinning or waking when the next job is posted.
        let wrong = Self.run(jobs: 2000, pattern: [2, 8, 3, 6, 1, 5, 2, 7, 4, 8])
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
    }

    /// The hand-over race, made to happen: a worker that sits a two-thread job out is held up
    /// right after it sees that job posted, while the caller finishes it and stores the next,
    /// eight-thread job (held up before posting it). A protocol in which such a worker reads the
    /// job's fields runs the next job's chunk with the wrong job's ticket, and again when it is
    /// posted: an index runs twice.
    @Test func aWorkerThatSitsAJobOutNeverRunsTheNextOneTwice() {
        setPoolTestHook { where_, index in
            // Workers 2... (non-participants of the 2-thread job) wake into the middle of the
            // caller's pause between storing the next job and posting it.
            if where_ == 1 && index >= 2 { usleep(1_000) }
            if where_ == 0 { usleep(4_000) }
        }
        defer { setPoolTestHook(nil) }
        let wrong = Self.run(jobs: 60, pattern: [2, 8])
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
    }
}
