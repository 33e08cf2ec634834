import Analysis
import Foundation
import JSON
import Logging
import Store
import Synchronization
import Testing
import TestSupport

/// Answers like `FakeEngine`, but fails transiently the first `failures[id]` times an item is tried (a flaky image
/// host), or always for ids in `alwaysFailing`; counts calls and the most calls in flight at once.
final class FlakyAnalyzer: PostAnalyzer {
    let failures: [String: Int]
    let alwaysFailing: Set<String>
    let delay: Duration
    private let state = Mutex<(calls: [String: Int], inFlight: Int, peak: Int)>(([:], 0, 0))

    init(failures: [String: Int] = [:], alwaysFailing: Set<String> = [], delay: Duration = .milliseconds(20)) {
        self.failures = failures
        self.alwaysFailing = alwaysFailing
        self.delay = delay
    }

    struct Unreachable: TransientError, CustomStringConvertible { var description: String { "cannot download image: HTTP 503" } }

    func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        let id = request.record.id
        let call = state.withLock { s -> Int in
            s.calls[id, default: 0] += 1
            s.inFlight += 1
            s.peak = max(s.peak, s.inFlight)
            return s.calls[id]!
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        try await Task.sleep(for: delay)
        if alwaysFailing.contains(id) || call <= failures[id, default: 0] { throw Unreachable() }
        return try await FakeEngine.analyzer().analyze(request)
    }

    var calls: [String: Int] { state.withLock { $0.calls } }
    var peak: Int { state.withLock { $0.peak } }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "postlens.test.worker")
    logger.logLevel = .critical
    return logger
}

/// Submits `count` sentiment records (text only, or with a PNG image for every third), bad ones at `bad`.
func submitPosts(_ queue: any JobQueue, count: Int, bad: Set<Int> = [], maxAttempts: Int = 3) async throws -> JobInfo {
    var items: [InputItem] = []
    for seq in 0..<count {
        if bad.contains(seq) {
            items.append(InputItem(seq: seq, id: "post-\(seq)", record: nil, error: "line \(seq + 1): not valid JSON"))
        } else {
            items.append(InputItem(seq: seq, id: "post-\(seq)", record: PostRecord(id: "post-\(seq)", text: "第\(seq)条：物流很快"), error: nil))
        }
    }
    var submission = JobSubmission(spec: try JobSpec.parse(task: "sentiment", options: [:]), source: "test")
    submission.maxAttempts = maxAttempts
    submission.chunkSize = 37
    return try await submission.submit(items, to: queue, resolve: { .reference($0) })
}

/// Polls `condition` (a machine under load may take a while) until it holds; fails the test after `seconds`.
func waitUntil(seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try await !condition() {
        guard Date() < deadline else {
            Issue.record("condition not met within \(seconds) s", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

@Suite struct QueueWorkerTests {
    func options(concurrency: Int = 4) -> WorkerOptions {
        var options = WorkerOptions()
        options.concurrency = concurrency
        options.exitWhenIdle = true
        options.pollInterval = .milliseconds(50)
        options.lease = .seconds(5)
        options.retryBase = .milliseconds(50)
        options.retryCap = .milliseconds(200)
        return options
    }

    /// Two workers share 60 items, 3 of them bad: each record ends exactly once, in input order, bad ones as errors,
    /// and the engine saw several items at once (continuous batching, not one by one).
    @Test(arguments: backends) func workersFinishEveryItemOnce(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitPosts(queue, count: 60, bad: [5, 17, 42])
            let analyzer = FlakyAnalyzer()
            let workers = (0..<2).map { QueueWorker(id: "w\($0)", queue: queue, analyzer: analyzer, options: options(), logger: quietLogger()) }
            let counters = try await withThrowingTaskGroup(of: WorkerCounters.self) { group in
                for worker in workers { group.addTask { try await worker.run() } }
                return try await group.reduce(into: [WorkerCounters]()) { $0.append($1) }
            }
            let info = try await queue.job(id: job.id)
            #expect(info.state == .completed && info.done == 60 && info.failed == 3)
            let results = try await queue.allResults(jobID: job.id)
            #expect(results.map(\.seq) == Array(0..<60))
            #expect(results.filter { !$0.ok }.map(\.itemID) == ["post-5", "post-17", "post-42"])
            let first = try JSONValue.parse(results[0].line)
            #expect(first["status"] == "ok" && first["task"] == "sentiment" && first["result"]?["polarity"] == "mixed")
            #expect(analyzer.calls.count == 57 && analyzer.calls.values.allSatisfy { $0 == 1 }, "each good item ran once")
            #expect(counters.reduce(0) { $0 + $1.succeeded } == 57)
            #expect(analyzer.peak >= 4, "items ran together (peak \(analyzer.peak))")
        }
    }

    /// Transient failures are retried with backoff up to the job's attempts, then the last error is the item's result.
    @Test(arguments: backends) func transientFailuresAreRetriedThenRecorded(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitPosts(queue, count: 6, maxAttempts: 3)
            let analyzer = FlakyAnalyzer(failures: ["post-1": 1, "post-2": 2], alwaysFailing: ["post-4"])
            let worker = QueueWorker(queue: queue, analyzer: analyzer, options: options(concurrency: 2), logger: quietLogger())
            let counters = try await worker.run()
            let info = try await queue.job(id: job.id)
            #expect(info.state == .completed && info.done == 6 && info.failed == 1)
            #expect(analyzer.calls == ["post-0": 1, "post-1": 2, "post-2": 3, "post-3": 1, "post-4": 3, "post-5": 1])
            #expect(counters.retries == 1 + 2 + 2)
            let failed = try #require(try await queue.allResults(jobID: job.id).first { !$0.ok })
            let line = try JSONValue.parse(failed.line)
            #expect(line["id"] == "post-4")
            #expect(line["error"]?.stringValue?.contains("HTTP 503") == true, "\(line)")
        }
    }

    /// An item whose worker kept dying (its lease expired each time) is given up after the job's attempts.
    @Test(arguments: backends) func itemsWhoseWorkersKeepDyingAreGivenUp(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitPosts(queue, count: 2, maxAttempts: 2)
            for _ in 0..<2 {
                _ = try await queue.claim(worker: "doomed", tasks: [job.task], limit: 1, lease: .milliseconds(200))
                try await Task.sleep(for: .milliseconds(500))
            }
            let worker = QueueWorker(queue: queue, analyzer: FlakyAnalyzer(), options: options(), logger: quietLogger())
            try await worker.run()
            let results = try await queue.allResults(jobID: job.id)
            #expect(results.count == 2)
            let line = try JSONValue.parse(results[0].line)
            #expect(line["status"] == "error")
            #expect(line["error"]?.stringValue?.hasPrefix("gave up after 2 attempts") == true, "\(line)")
            #expect(results[1].ok)
            #expect(try await queue.job(id: job.id).state == .completed)
        }
    }

    /// `drain()` stops claiming; the items in flight are recorded; the rest stays queued for others.
    @Test(arguments: backends) func drainFinishesTheItemsInFlightOnly(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitPosts(queue, count: 20)
            var opts = options(concurrency: 3)
            opts.exitWhenIdle = false
            let worker = QueueWorker(queue: queue, analyzer: FlakyAnalyzer(delay: .milliseconds(300)), options: opts, logger: quietLogger())
            let run = Task { try await worker.run() }
            try await waitUntil { try await queue.job(id: job.id).running == 3 }
            worker.drain()
            let counters = try await run.value
            let info = try await queue.job(id: job.id)
            #expect(counters.claimed == 3 && counters.succeeded == 3)
            #expect(info.done == 3 && info.running == 0 && info.state == .running)
            #expect(try await queue.pendingItems(tasks: [job.task]) == 17)
        }
    }

    /// `abandon()` hands the items in flight back at once, their attempt not counted.
    @Test(arguments: backends) func abandonHandsItemsBack(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitPosts(queue, count: 4)
            var opts = options(concurrency: 2)
            opts.exitWhenIdle = false
            let worker = QueueWorker(queue: queue, analyzer: FlakyAnalyzer(delay: .seconds(30)), options: opts, logger: quietLogger())
            let run = Task { try await worker.run() }
            try await waitUntil { try await queue.job(id: job.id).running == 2 }
            await worker.abandon()
            _ = try await run.value
            #expect(try await queue.job(id: job.id).running == 0)
            let again = try await queue.claim(worker: "next", tasks: [job.task], limit: 4, lease: .seconds(5))
            #expect(again.map(\.attempts) == [1, 1, 1, 1])
        }
    }
}
