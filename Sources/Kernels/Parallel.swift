import Foundation
import Synchronization
import CBLAS

/// The engine's parallelism, in one place: a pool of `threadCount − 1` worker threads, created once
/// and reused by every call (the calling thread runs the first chunk itself). BLAS is told to use the
/// same number of threads so that the two never oversubscribe.
///
/// Why not `DispatchQueue.concurrentPerform`: on Linux it runs its iterations on the global dispatch
/// pool, which Swift concurrency (the server's request tasks, the test runner) shares and which is
/// only as wide as the core count — when another task holds a pool thread the "parallel" loop runs
/// on one core. Measured in the test runner: two chunks took as long on "2 threads" as on 1. Our own
/// threads make the split real whatever else the process does.
public enum Parallel {
    /// Threads used by kernels; set once at start-up (`--threads`), defaults to the active core count.
    nonisolated(unsafe) public private(set) static var threadCount: Int = ProcessInfo.processInfo.activeProcessorCount

    public static func setThreadCount(_ count: Int) {
        threadCount = max(1, count)
        openblas_set_num_threads(Int32(threadCount))
    }

    /// Runs `body` over `0..<count` split into at most `threadCount` contiguous ranges.
    /// Small jobs (`count < minimumPerThread * 2`) run inline, as does a call made while another
    /// parallel loop is running (from inside a chunk, or from a second thread).
    @inlinable
    public static func forRanges(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(1, minimumPerThread)))
        if chunks <= 1 || count <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            WorkerPool.shared.run(chunks: chunks) { chunk in
                body((count * chunk / chunks)..<(count * (chunk + 1) / chunks))
            }
        }
    }
}

/// Persistent worker threads that run the chunks of one parallel loop at a time.
///
/// Hand-off: the caller publishes the job and bumps `generation`; workers spin on `generation` for a
/// short while (decode runs hundreds of short loops per token, and a futex wake-up costs more than
/// the wait) and then sleep on a condition variable. Completion is a countdown the caller spins on;
/// every worker counts down for every job, so no worker can still be reading one job's fields when
/// the next is published.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    @usableFromInline static let shared = WorkerPool()

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// Guards sleeping and the generation bump, so a worker going to sleep cannot miss a job.
    private let wake = NSCondition()
    nonisolated(unsafe) private var sleepers = 0
    /// The current job: chunk index → work. Written before `generation` is bumped and read after it
    /// is seen (the bump is a release, the workers' load an acquire).
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var jobChunks = 0
    nonisolated(unsafe) private var workers: [Thread] = []

    /// Iterations a waiting worker spins before sleeping (≈ 50–100 µs).
    private let spinLimit = 20_000

    private init() {}

    /// Starts workers up to `count − 1` (they are never stopped; the pool lives as long as the process).
    /// Called only by the thread holding `busy`, before it bumps the generation.
    private func ensureWorkers(_ count: Int) {
        while workers.count < count - 1 {
            let index = workers.count + 1
            let start = generation.load(ordering: .acquiring)
            let thread = Thread { [unowned self] in self.workerLoop(index, seen: start) }
            thread.name = "postlens-compute-\(index)"
            thread.stackSize = 1 << 22
            workers.append(thread)
            thread.start()
        }
    }

    @usableFromInline
    func run(chunks: Int, _ body: (Int) -> Void) {
        // One loop at a time: a nested or concurrent call runs its chunks inline.
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            for chunk in 0..<chunks { body(chunk) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        ensureWorkers(chunks)
        withoutActuallyEscaping(body) { body in
            job = body
            jobChunks = chunks
            // Every worker acknowledges every job (running a chunk or not), so none can lag into the next.
            pending.store(workers.count, ordering: .relaxed)
            wake.lock()
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers > 0 { wake.broadcast() }
            wake.unlock()
            body(0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > spinLimit { sched_yield() }
            }
            job = nil
        }
    }

    private func workerLoop(_ index: Int, seen start: Int) {
        var seen = start
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins > spinLimit {
                    wake.lock()
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        sleepers += 1
                        wake.wait()
                        sleepers -= 1
                    }
                    wake.unlock()
                    spins = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if index < jobChunks, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

/// Items handed out a few at a time to whichever thread asks next: for loops whose threads may run at
/// different speeds (a shared or busy machine, one core also serving the OS), where equal static ranges
/// leave every thread waiting for the slowest. Use with `Parallel.forEachThread`.
public final class WorkQueue: Sendable {
    private let next = Atomic<Int>(0)
    public let count: Int
    public let grain: Int

    public init(count: Int, grain: Int) {
        self.count = count
        self.grain = max(1, grain)
    }

    /// The next items not yet taken, or nil when all are.
    @inlinable
    public func claim() -> Range<Int>? {
        let start = take()
        return start < count ? start..<min(count, start + grain) : nil
    }

    @usableFromInline
    func take() -> Int { next.add(grain, ordering: .relaxed).oldValue }
}

extension Parallel {
    /// Runs `body` once on each compute thread (at most `limit`), for loops that pull their work from a
    /// `WorkQueue` and set up per-thread scratch once.
    @inlinable
    public static func forEachThread(limit: Int = .max, _ body: () -> Void) {
        forRanges(min(threadCount, max(1, limit))) { range in for _ in range { body() } }
    }
}
