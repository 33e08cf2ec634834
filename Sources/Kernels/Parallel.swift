import Dispatch
import CBLAS

/// The engine's parallelism, in one place. Work is split into contiguous chunks run on Dispatch's
/// worker threads, which are created once by the system and reused across calls (no per-call thread
/// creation). BLAS is told to use the same number of threads so that the two never oversubscribe.
public enum Parallel {
    /// Threads used by kernels; set once at start-up (`--threads`), defaults to the active core count.
    nonisolated(unsafe) public private(set) static var threadCount: Int = ProcessInfo.processInfo.activeProcessorCount

    public static func setThreadCount(_ count: Int) {
        threadCount = max(1, count)
        openblas_set_num_threads(Int32(threadCount))
    }

    /// Runs `body` over `0..<count` split into at most `threadCount` contiguous ranges.
    /// Small jobs (`count < minimumPerThread * 2`) run inline.
    @inlinable
    public static func forRanges(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(1, minimumPerThread)))
        if chunks <= 1 || count <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                box.value(start..<end)
            }
        }
    }
}

/// Wraps a value whose thread-safety is guaranteed by the caller (kernels write disjoint slices).
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

import Foundation
