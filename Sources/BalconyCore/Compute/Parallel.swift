import CKernels
import Dispatch
import Foundation

/// How many threads Balcony's kernels (and OpenBLAS) use. Set once from `--threads`.
public enum ComputeThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var value = ProcessInfo.processInfo.activeProcessorCount

    /// The current thread count (default: all cores).
    public static var count: Int {
        lock.lock(); defer { lock.unlock() }
        return value
    }

    /// Sets the thread count for Balcony's kernels and for BLAS.
    public static func set(_ n: Int) {
        let n = max(1, n)
        lock.lock(); value = n; lock.unlock()
        BLAS.setThreads(n)
    }
}

/// Splits `0..<count` into contiguous chunks run on up to `ComputeThreads.count` threads: the
/// calling thread and a persistent pool of workers (`CKernels/thread_pool.c`), which pick up
/// decode's back-to-back regions without a wake-up each. Work below `minimumPerThread` items per
/// thread stays on the calling thread: even a spinning worker costs more than tiny kernels take.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = min(ComputeThreads.count, max(1, count / max(minimumPerThread, 1)))
    if threads <= 1 || SerialKernels.active {
        body(0..<count)
        return
    }
    let chunk = (count + threads - 1) / threads
    withoutActuallyEscaping(body) { body in
        var job = ChunkJob(body: body, count: count, chunk: chunk)
        // The pool serves one caller at a time; another caller (a second model decoding on
        // another thread) falls back to the dispatch queue.
        let ran = withUnsafeMutablePointer(to: &job) { balcony_pool_run(Int32(threads), runChunk, $0) }
        if ran != 0 { return }
        // The body captures raw pointers, which are not Sendable; each chunk touches disjoint
        // rows, and concurrentPerform returns only when every chunk is done, so sharing it is safe.
        let shared = UncheckedSendable(job)
        DispatchQueue.concurrentPerform(iterations: threads) { t in shared.value.run(chunk: t) }
    }
}

/// One `parallelChunks` call: chunk `t` is `t * chunk ..< (t + 1) * chunk`, clipped to `count`.
private struct ChunkJob {
    let body: (Range<Int>) -> Void
    let count: Int
    let chunk: Int

    func run(chunk t: Int) {
        let lo = t * chunk
        let hi = min(count, lo + chunk)
        if lo < hi { body(lo..<hi) }
    }
}

/// The pool's task: chunk `index` of the job `context` points at.
private let runChunk: balcony_task_fn = { context, index in
    context!.assumingMemoryBound(to: ChunkJob.self).pointee.run(chunk: Int(index))
}

/// Runs `body` over chunks of `chunk` items of `0 ..< count`, which the threads take in order as
/// each finishes its last: a thread slowed by the machine (a VM's neighbours, an interrupt) does
/// fewer chunks instead of holding the others at the join. Which thread runs a chunk must not
/// matter to the result.
func parallelDynamic(_ count: Int, chunk: Int, _ body: (Range<Int>) -> Void) {
    let chunks = (count + chunk - 1) / chunk
    let threads = min(ComputeThreads.count, chunks)
    if threads <= 1 || SerialKernels.active {
        body(0..<count)
        return
    }
    var next = 0
    withUnsafeMutablePointer(to: &next) { counter in
        // Each chunk is claimed by exactly one thread through the atomic counter.
        let shared = UncheckedSendable(counter)
        parallelChunks(threads) { _ in
            while true {
                let c = balcony_atomic_fetch_add(shared.value, 1)
                if c >= chunks { break }
                body(c * chunk ..< min(count, (c + 1) * chunk))
            }
        }
    }
}

/// Wraps a value the compiler cannot prove thread-safe where the code guarantees it by construction.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Runs tasks `0 ..< count` on up to `ComputeThreads.count` threads, each task wholly on one
/// thread, with BLAS and `parallelChunks` single-threaded inside it. For work that splits into a
/// few large independent pieces (training: groups of sequences, one balcony each), where
/// per-operation splitting would synchronize the threads hundreds of times. Tasks must touch
/// disjoint memory; which thread runs which task does not change any result.
func parallelTasks(_ count: Int, _ body: (Int) -> Void) {
    parallelTasks(count) { task, _ in body(task) }
}

/// `parallelTasks` whose body also gets the index of the thread running it (`0 ..<
/// ComputeThreads.count`), for per-thread scratch.
func parallelTasks(_ count: Int, _ body: (_ task: Int, _ thread: Int) -> Void) {
    let threads = min(ComputeThreads.count, count)
    if threads <= 1 || SerialKernels.active {
        for i in 0..<count { body(i, 0) }
        return
    }
    BLAS.setThreads(1)
    defer { BLAS.setThreads(ComputeThreads.count) }
    withoutActuallyEscaping(body) { body in
        var job = TaskJob(body: body, count: count, threads: threads)
        let ran = withUnsafeMutablePointer(to: &job) { balcony_pool_run(Int32(threads), runTasks, $0) }
        if ran != 0 { return }
        let shared = UncheckedSendable(job)
        DispatchQueue.concurrentPerform(iterations: threads) { t in shared.value.run(thread: t) }
    }
}

/// One `parallelTasks` call: thread `t` runs tasks `t, t + threads, ...`, a fixed assignment.
private struct TaskJob {
    let body: (Int, Int) -> Void
    let count: Int
    let threads: Int

    func run(thread t: Int) {
        SerialKernels.set(true)
        defer { SerialKernels.set(false) }
        var i = t
        while i < count {
            body(i, t)
            i += threads
        }
    }
}

private let runTasks: balcony_task_fn = { context, index in
    context!.assumingMemoryBound(to: TaskJob.self).pointee.run(thread: Int(index))
}

/// Marks the threads of `parallelTasks`, on which `parallelChunks` runs its body inline.
enum SerialKernels {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    static var active: Bool { pthread_getspecific(key) != nil }

    static func set(_ on: Bool) { pthread_setspecific(key, on ? UnsafeRawPointer(bitPattern: 1) : nil) }
}
