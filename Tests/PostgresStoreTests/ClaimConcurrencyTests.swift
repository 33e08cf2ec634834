import Foundation
import PostgresStore
import Store
import Synchronization
import Testing

/// The claim query under contention: many workers claiming at once from one PostgreSQL database.
@Suite(.enabled(if: TestDatabase.available, "needs POSTLENS_TEST_DATABASE_URL (scripts/test-postgres.sh start)"))
struct ClaimConcurrencyTests {
    /// 16 claimers on 16 connections race for 600 items in groups of 1–7: with leases far longer than the test, every
    /// item is claimed exactly once (`SKIP LOCKED` skips rows another claim is taking; the lease keeps them).
    @Test func noItemIsClaimedTwiceWhileItsLeaseIsValid() async throws {
        try await TestDatabase.withFresh(maximumConnections: 20) { database in
            let queue = database.jobs
            let job = try await submitJob(queue, count: 600)
            let claims = Locked<[JobItemKey: [String]]>([:])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<16 {
                    group.addTask {
                        let worker = "w\(w)"
                        while true {
                            let got = try await queue.claim(worker: worker, tasks: ["sentiment@2"], limit: 1 + w % 7, lease: .seconds(600))
                            if got.isEmpty { return }
                            claims.withLock { for item in got { $0[item.key, default: []].append(worker) } }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let all = claims.withLock { $0 }
            #expect(all.count == 600, "every item claimed")
            let twice = all.filter { $0.value.count > 1 }
            #expect(twice.isEmpty, "claimed twice: \(twice.prefix(5))")
            #expect(Set(all.values.map { $0[0] }).count > 1, "the work was shared")
            #expect(try await queue.job(id: job.id).running == 600)
        }
    }

    /// Leases of 1 s, claimers that never finish (killed workers): once a lease runs out exactly one claimer takes the
    /// item over, and never while the previous lease is still valid.
    @Test func expiredItemsAreTakenOverByExactlyOneClaimer() async throws {
        try await TestDatabase.withFresh(maximumConnections: 20) { database in
            let queue = database.jobs
            _ = try await submitJob(queue, count: 120, maxAttempts: 10)
            let lease = Duration.seconds(1)
            // (worker, local times just before and just after the claim call) per item, in claim order. The database
            // took the claim at some moment between the two.
            let claims = Locked<[JobItemKey: [(String, ContinuousClock.Instant, ContinuousClock.Instant)]]>([:])
            let clock = ContinuousClock(), end = clock.now + .seconds(4)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<12 {
                    group.addTask {
                        while clock.now < end {
                            let before = clock.now
                            let got = try await queue.claim(worker: "w\(w)", tasks: ["sentiment@2"], limit: 5, lease: lease)
                            let after = clock.now
                            claims.withLock { for item in got { $0[item.key, default: []].append(("w\(w)", before, after)) } }
                            try await Task.sleep(for: .milliseconds(got.isEmpty ? 50 : 5))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let all = claims.withLock { $0 }
            #expect(all.count == 120)
            var takeovers = 0
            for (key, list) in all {
                for (previous, next) in zip(list, list.dropFirst()) {
                    takeovers += 1
                    // The previous lease ran until (its claim's moment + lease) ≥ previous.before + lease; the next claim
                    // happened by next.after. A claim inside a valid lease would show as next.after < previous.before + lease.
                    #expect(next.2 - previous.1 >= lease - .milliseconds(5), "\(key) claimed by \(previous.0) then \(next.0) inside its lease")
                }
            }
            #expect(takeovers >= 60, "items were taken over (\(takeovers) takeovers in 4 s of 1 s leases)")
        }
    }

    /// A claim reads only the slices of `job_item` it needs (partial indexes), so it stays fast on a job of 300,000
    /// items (sorting every claimable row, as a naive query does, took 0.4 s per claim at 500,000 on this machine).
    @Test func claimsStayFastOnALargeJob() async throws {
        try await TestDatabase.withFresh { database in
            try await database.execute("""
                INSERT INTO job (id, task, spec, state, source, total, max_attempts) VALUES ('job_big', 'sentiment@2', '{}', 'queued', 'test', 300000, 3)
                """)
            try await database.execute("""
                INSERT INTO job_item (job_id, seq, item_id, record, state)
                SELECT 'job_big', g, 'p' || g, '{"id": "p' || g || '", "text": "x"}', 'queued' FROM generate_series(0, 299999) g
                """)
            try await database.execute("ANALYZE job_item")
            let queue = database.jobs
            let clock = ContinuousClock()
            var times: [Duration] = []
            var seqs: [Int] = []
            for _ in 0..<15 {
                let start = clock.now
                let got = try await queue.claim(worker: "w", tasks: ["sentiment@2"], limit: 4, lease: .seconds(600))
                times.append(clock.now - start)
                seqs += got.map(\.key.seq)
            }
            #expect(seqs == Array(0..<60), "in input order")
            let median = times.sorted()[times.count / 2]
            #expect(median < .milliseconds(100), "median claim \(median)")
        }
    }
}
