import Foundation
import PostgresStore
import Store
import Testing

/// Stores a job of `count` items (those in `bad` as recorded errors at once) and opens it.
@discardableResult
func submitJob(_ queue: any JobQueue, count: Int, bad: Set<Int> = [], task: String = "sentiment@2", maxAttempts: Int = 3,
               id: String = NewJob.makeID()) async throws -> JobInfo {
    try await queue.createJob(NewJob(id: id, task: task, spec: #"{"task": "sentiment"}"#, total: count, source: "test", maxAttempts: maxAttempts))
    let items = (0..<count).map { seq in
        bad.contains(seq)
            ? NewJobItem(seq: seq, itemID: "p\(seq)", record: nil, errorLine: #"{"id": "p\#(seq)", "status": "error"}"#)
            : NewJobItem(seq: seq, itemID: "p\(seq)", record: #"{"id": "p\#(seq)", "text": "t"}"#, image: seq % 2 == 0 ? png(UInt8(seq % 3)) : nil)
    }
    try await queue.addItems(Array(items.prefix(count / 2)), to: id)
    try await queue.addItems(Array(items.dropFirst(count / 2)), to: id)
    return try await queue.openJob(id: id)
}

@Suite struct JobQueueConformanceTests {
    static let tasks = ["sentiment@2"]

    @Test(arguments: backends) func submitClaimCompleteCountsEachItemOnce(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let opened = try await submitJob(queue, count: 10, bad: [3])
            #expect(opened.state == .queued)
            #expect(opened.total == 10 && opened.done == 1 && opened.failed == 1)
            try await queue.registerWorker(WorkerRecord(id: "w1", host: "h", pid: 1, concurrency: 4))

            let first = try await queue.claim(worker: "w1", tasks: Self.tasks, limit: 4, lease: .seconds(30))
            #expect(first.map(\.key.seq) == [0, 1, 2, 4], "oldest first, the bad record skipped")
            #expect(first.allSatisfy { $0.attempts == 1 && $0.tookOverFrom == nil && $0.maxAttempts == 3 })
            #expect(first[0].imageSHA256 != nil && first[1].imageSHA256 == nil)
            let images = try await queue.images([first[0].imageSHA256!])
            #expect(images[first[0].imageSHA256!] == png(0))
            #expect(try await queue.job(id: opened.id).state == .running)
            #expect(try await queue.job(id: opened.id).running == 4)

            #expect(try await queue.complete(first[0].key, worker: "w1", ok: true, line: #"{"id": "p0"}"#))
            #expect(try await !queue.complete(first[0].key, worker: "w1", ok: true, line: #"{"id": "p0", "again": true}"#),
                    "a second result for an item is refused")
            #expect(try await !queue.complete(first[0].key, worker: "w2", ok: false, line: #"{"id": "p0", "other": true}"#))
            #expect(try await queue.complete(first[1].key, worker: "w1", ok: false, line: #"{"id": "p1", "status": "error"}"#))
            let info = try await queue.job(id: opened.id)
            #expect(info.done == 3 && info.failed == 2 && info.running == 2)

            let results = try await queue.allResults(jobID: opened.id)
            #expect(results.map(\.seq) == [0, 1, 3])
            #expect(results[0].line == #"{"id": "p0"}"#, "the first result stays")

            // Finish everything: the job completes exactly when the last result lands.
            var remaining = Array(first.dropFirst(2))
            remaining += try await queue.claim(worker: "w1", tasks: Self.tasks, limit: 100, lease: .seconds(30))
            #expect(remaining.map(\.key.seq).sorted() == [2, 4, 5, 6, 7, 8, 9])
            for item in remaining.dropLast() { _ = try await queue.complete(item.key, worker: "w1", ok: true, line: "{}") }
            #expect(try await queue.job(id: opened.id).state == .running)
            _ = try await queue.complete(remaining.last!.key, worker: "w1", ok: true, line: "{}")
            let done = try await queue.job(id: opened.id)
            #expect(done.state == .completed && done.done == 10 && done.failed == 2 && done.finishedAt != nil)
            #expect(try await queue.allResults(jobID: opened.id).map(\.seq) == Array(0..<10))
            #expect(try await queue.claim(worker: "w1", tasks: Self.tasks, limit: 10, lease: .seconds(30)).isEmpty)
        }
    }

    @Test(arguments: backends) func expiredLeasesAreTakenOverAndCounted(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitJob(queue, count: 3, maxAttempts: 2)
            for worker in ["dead", "alive"] { try await queue.registerWorker(WorkerRecord(id: worker, host: "h", pid: 1, concurrency: 1)) }
            let lost = try await queue.claim(worker: "dead", tasks: Self.tasks, limit: 3, lease: .seconds(2))
            #expect(lost.count == 3)
            #expect(try await queue.claim(worker: "alive", tasks: Self.tasks, limit: 3, lease: .seconds(30)).isEmpty, "leases still valid")
            try await Task.sleep(for: .milliseconds(2300))
            let taken = try await queue.claim(worker: "alive", tasks: Self.tasks, limit: 3, lease: .milliseconds(300))
            #expect(taken.map(\.key.seq) == [0, 1, 2])
            #expect(taken.allSatisfy { $0.tookOverFrom == "dead" && $0.attempts == 2 && !$0.isExhausted })
            let stats = try await queue.statistics()
            #expect(stats.workers.first { $0.id == "dead" }?.leaseExpiries == 3)
            // The dead worker's late result still counts once; the item is then no longer claimable.
            #expect(try await queue.complete(taken[0].key, worker: "dead", ok: true, line: "{}"))
            #expect(try await !queue.complete(taken[0].key, worker: "alive", ok: true, line: "{}"))
            // Expired again: a third claim is past max attempts, which the worker records as the item's error.
            try await Task.sleep(for: .milliseconds(1200))
            let third = try await queue.claim(worker: "dead", tasks: Self.tasks, limit: 3, lease: .seconds(30))
            #expect(third.map(\.key.seq) == [1, 2])
            #expect(third.allSatisfy { $0.attempts == 3 && $0.isExhausted && $0.tookOverFrom == "alive" })
            #expect(try await queue.job(id: job.id).running == 2)
        }
    }

    @Test(arguments: backends) func retriesWaitOutTheirBackoffAndReleasesDoNotCountAnAttempt(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitJob(queue, count: 2)
            let claimed = try await queue.claim(worker: "w", tasks: Self.tasks, limit: 2, lease: .seconds(30))
            try await queue.retry(claimed[0].key, worker: "w", error: "HTTP 503", after: .seconds(2))
            try await queue.retry(claimed[1].key, worker: "someone-else", error: "not mine", after: .zero)  // ignored: not its holder
            #expect(try await queue.claim(worker: "w", tasks: Self.tasks, limit: 2, lease: .seconds(30)).isEmpty, "backoff not over")
            #expect(try await queue.pendingItems(tasks: Self.tasks) == 2)
            #expect(try await queue.statistics().queued == 1)
            try await Task.sleep(for: .milliseconds(2300))
            let again = try await queue.claim(worker: "w", tasks: Self.tasks, limit: 2, lease: .seconds(30))
            #expect(again.map(\.key.seq) == [0])
            #expect(again[0].attempts == 2 && again[0].lastError == "HTTP 503")

            try await queue.release([again[0].key, claimed[1].key], worker: "w")
            let released = try await queue.claim(worker: "w2", tasks: Self.tasks, limit: 2, lease: .seconds(30))
            #expect(released.map(\.key.seq) == [0, 1])
            #expect(released.map(\.attempts) == [2, 1], "a release hands the attempt back")
            #expect(try await queue.job(id: job.id).state == .running)
        }
    }

    @Test(arguments: backends) func cancelledAndForeignJobsAreNeverClaimed(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let job = try await submitJob(queue, count: 4)
            let other = try await submitJob(queue, count: 2, task: "promo@9")
            let inFlight = try await queue.claim(worker: "w", tasks: Self.tasks, limit: 1, lease: .seconds(30))
            let cancelled = try await queue.cancelJob(id: job.id)
            #expect(cancelled.state == .cancelled && cancelled.finishedAt != nil)
            #expect(try await queue.claim(worker: "w", tasks: Self.tasks, limit: 10, lease: .seconds(30)).isEmpty)
            // The item in flight still finishes and is recorded; the job stays cancelled.
            #expect(try await queue.complete(inFlight[0].key, worker: "w", ok: true, line: "{}"))
            let after = try await queue.job(id: job.id)
            #expect(after.state == .cancelled && after.done == 1)
            #expect(try await queue.cancelJob(id: job.id).state == .cancelled, "cancelling again is harmless")
            #expect(try await queue.pendingItems(tasks: Self.tasks) == 0)
            // A task version this worker does not run is left alone.
            #expect(try await queue.claim(worker: "w", tasks: ["promo@2"], limit: 10, lease: .seconds(30)).isEmpty)
            #expect(try await queue.claim(worker: "w", tasks: ["promo@9"], limit: 10, lease: .seconds(30)).count == 2)
            try await queue.failJob(id: other.id, error: "spec unusable")
            let failed = try await queue.job(id: other.id)
            #expect(failed.state == .failed && failed.error == "spec unusable")
            await expectStoreError(.jobNotFound("job_nope")) { _ = try await queue.job(id: "job_nope") }
            await expectStoreError(.jobNotFound("job_nope")) { _ = try await queue.cancelJob(id: "job_nope") }
            #expect(try await queue.jobs(limit: 10).map(\.id) == [other.id, job.id], "newest first")
        }
    }

    @Test(arguments: backends) func submissionsAreCheckedAndAllBadJobsCompleteAtOnce(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            let allBad = try await submitJob(queue, count: 3, bad: [0, 1, 2])
            #expect(allBad.state == .completed && allBad.failed == 3)
            try await queue.createJob(NewJob(id: "job_short", task: "ocr@2", spec: "{}", total: 5, source: "test"))
            try await queue.addItems([NewJobItem(seq: 0, itemID: "a", record: "{}")], to: "job_short")
            #expect(try await queue.job(id: "job_short").state == .submitting)
            #expect(try await queue.claim(worker: "w", tasks: ["ocr@2"], limit: 5, lease: .seconds(30)).isEmpty, "not claimable while submitting")
            await #expect(throws: StoreError.self) { _ = try await queue.openJob(id: "job_short") }
            await #expect(throws: StoreError.self) { try await queue.addItems([NewJobItem(seq: 0, itemID: "b", record: "{}")], to: allBad.id) }
        }
    }

    @Test(arguments: backends) func renewalsKeepLeasesAndPublishCounters(_ backend: Backend) async throws {
        try await backend.withJobs { queue in
            _ = try await submitJob(queue, count: 2)
            try await queue.registerWorker(WorkerRecord(id: "w", host: "h", pid: 7, concurrency: 2))
            let claimed = try await queue.claim(worker: "w", tasks: Self.tasks, limit: 2, lease: .seconds(3))
            let counters = WorkerCounters(claimed: 2, succeeded: 5, failed: 1, retries: 3, inFlight: 2)
            for _ in 0..<3 {
                try await Task.sleep(for: .seconds(1))  // past the first lease's end by the third renewal
                let held = try await queue.renewLeases(worker: "w", items: claimed.map(\.key), lease: .seconds(3), counters: counters,
                                                       state: .running)
                #expect(held == Set(claimed.map(\.key)))
            }
            #expect(try await queue.claim(worker: "thief", tasks: Self.tasks, limit: 2, lease: .seconds(30)).isEmpty, "renewed leases hold")
            let stats = try await queue.statistics()
            #expect(stats.claimed == 2 && stats.queued == 0 && stats.expired == 0)
            let worker = try #require(stats.workers.first { $0.id == "w" })
            #expect(worker.counters == counters && worker.pid == 7 && worker.state == .running)
            #expect(stats.jobsByState[.running] == 1)
            // Another worker's renewal holds nothing of ours.
            #expect(try await queue.renewLeases(worker: "thief", items: claimed.map(\.key), lease: .seconds(1), counters: WorkerCounters(),
                                                state: .draining).isEmpty)
        }
    }
}
