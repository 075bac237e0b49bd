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

/// Splits `0..<count` into contiguous chunks run on up to `ComputeThreads.count` threads.
/// Work below `minimumPerThread` items per thread stays on the calling thread: a dispatch costs a
/// few microseconds, more than small kernels take.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = min(ComputeThreads.count, max(1, count / max(minimumPerThread, 1)))
    if threads <= 1 || SerialKernels.active {
        body(0..<count)
        return
    }
    let chunk = (count + threads - 1) / threads
    // The body captures raw pointers, which are not Sendable; each chunk touches disjoint rows,
    // and concurrentPerform returns only when every chunk is done, so sharing it is safe.
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = t * chunk
            let hi = min(count, lo + chunk)
            if lo < hi { shared.value(lo..<hi) }
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
    let threads = min(ComputeThreads.count, count)
    if threads <= 1 || SerialKernels.active {
        for i in 0..<count { body(i) }
        return
    }
    BLAS.setThreads(1)
    defer { BLAS.setThreads(ComputeThreads.count) }
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            SerialKernels.set(true)
            defer { SerialKernels.set(false) }
            var i = t
            while i < count {
                shared.value(i)
                i += threads
            }
        }
    }
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
