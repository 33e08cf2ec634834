import Foundation
import Logging
import PostgresNIO
import Store

/// `JobQueue` in PostgreSQL: any number of workers on any number of machines claim items concurrently.
///
/// - A claim is one statement: the oldest claimable items are selected `FOR UPDATE OF i SKIP LOCKED` (a row another
///   claimer is taking is skipped, never waited for or taken twice) and leased in the same statement. The lease
///   (`lease_until`) is the database's clock, so workers' clocks do not matter.
/// - An item whose lease ran out (its worker was killed, or lost the network) is claimable again; the claimer counts
///   a lease expiry against the worker that lost it.
/// - `complete` inserts the result with `ON CONFLICT DO NOTHING` on the primary key (job, seq) and only then moves
///   the item and the job's counters, in one transaction: one result row per item, whatever happens.
public struct PostgresJobQueue: JobQueue {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) { self.database = database }

    public var backendName: String { "postgresql" }
    var logger: Logger { database.logger }

    // MARK: - Submitting

    public func createJob(_ job: NewJob) async throws {
        let logger = logger
        try await database.withConnection { connection in
            try await connection.query("""
                INSERT INTO job (id, task, spec, state, source, total, max_attempts)
                VALUES (\(job.id), \(job.task), \(job.spec), 'submitting', \(job.source), \(job.total), \(max(1, job.maxAttempts)))
                """, logger: logger)
        }
    }

    public func addItems(_ items: [NewJobItem], to jobID: String) async throws {
        guard !items.isEmpty else { return }
        // Arrays bound as parameters and unnested: one statement per table whatever the chunk size.
        var hashes: [String] = [], blobs: [ByteBuffer] = []
        var seqs: [Int] = [], ids: [String] = [], records: [String] = [], imageHashes: [String] = []
        var errorSeqs: [Int] = [], errorIDs: [String] = [], errorLines: [String] = []
        var seen = Set<String>()
        for item in items {
            var hash = ""
            if let image = item.image {
                hash = sha256Hex(image)
                if seen.insert(hash).inserted {
                    hashes.append(hash)
                    blobs.append(ByteBuffer(bytes: image))
                }
            }
            seqs.append(item.seq)
            ids.append(item.itemID)
            records.append(item.record ?? "")
            imageHashes.append(hash)
            if let line = item.errorLine {
                errorSeqs.append(item.seq)
                errorIDs.append(item.itemID)
                errorLines.append(line)
            }
        }
        let logger = logger
        let (h, b, s, i, r, ih, es, ei, el) = (hashes, blobs, seqs, ids, records, imageHashes, errorSeqs, errorIDs, errorLines)
        try await database.transaction { connection in
            let state = try await connection.query("SELECT state FROM job WHERE id = \(jobID) FOR UPDATE", logger: logger)
                .all().first?.value("state", as: String.self)
            guard state == JobState.submitting.rawValue else {
                throw StoreError.invalid("job \(jobID) is not being submitted; items can only be added before it is opened")
            }
            if !h.isEmpty {
                try await connection.query("""
                    INSERT INTO job_image (sha256, data) SELECT * FROM unnest(\(h)::text[], \(b)::bytea[]) ON CONFLICT (sha256) DO NOTHING
                    """, logger: logger)
            }
            let errorSet = Set(es)
            let states = s.map { errorSet.contains($0) ? "done" : "queued" }
            try await connection.query("""
                INSERT INTO job_item (job_id, seq, item_id, record, image_sha256, state)
                SELECT \(jobID), u.seq, u.item_id, NULLIF(u.record, ''), NULLIF(u.image, ''), u.state
                FROM unnest(\(s)::int8[], \(i)::text[], \(r)::text[], \(ih)::text[], \(states)::text[]) AS u(seq, item_id, record, image, state)
                """, logger: logger)
            if !es.isEmpty {
                try await connection.query("""
                    INSERT INTO job_result (job_id, seq, item_id, ok, line, worker_id)
                    SELECT \(jobID), u.seq, u.item_id, false, u.line, NULL FROM unnest(\(es)::int8[], \(ei)::text[], \(el)::text[]) AS u(seq, item_id, line)
                    """, logger: logger)
                try await connection.query("UPDATE job SET done = done + \(es.count), failed = failed + \(es.count) WHERE id = \(jobID)",
                                           logger: logger)
            }
        }
    }

    public func openJob(id: String) async throws -> JobInfo {
        let logger = logger
        try await database.transaction { connection in
            guard let row = try await connection.query("""
                SELECT state, total, done, (SELECT count(*) FROM job_item WHERE job_id = \(id)) AS items FROM job WHERE id = \(id) FOR UPDATE
                """, logger: logger).all().first else { throw StoreError.jobNotFound(id) }
            guard try row.value("state", as: String.self) == JobState.submitting.rawValue else { return }
            let total = try row.value("total", as: Int.self), items = try row.value("items", as: Int.self)
            guard items == total else { throw StoreError.invalid("job \(id) was announced with \(total) items but has \(items)") }
            if try row.value("done", as: Int.self) >= total {
                try await connection.query("UPDATE job SET state = 'completed', finished_at = now() WHERE id = \(id)", logger: logger)
            } else {
                try await connection.query("UPDATE job SET state = 'queued' WHERE id = \(id)", logger: logger)
            }
        }
        return try await job(id: id)
    }

    // MARK: - Reading and steering

    /// The job with its lease count and recent rate (items finished by workers in the last minute of its run).
    static let infoColumns = """
        j.id, j.task, j.spec, j.state, j.source, j.total, j.done, j.failed, j.created_at, j.started_at, j.finished_at, j.error, j.summary,
        (SELECT count(*) FROM job_item i WHERE i.job_id = j.id AND i.state = 'running') AS running,
        EXTRACT(EPOCH FROM COALESCE(j.finished_at, now()) - j.started_at)::float8 AS elapsed_s,
        (SELECT count(*) FROM job_result r WHERE r.job_id = j.id AND r.worker_id IS NOT NULL
            AND r.finished_at > COALESCE(j.finished_at, now()) - interval '60 seconds') AS recent
        """

    public func job(id: String) async throws -> JobInfo {
        let logger = logger
        return try await database.withConnection { connection in
            guard let row = try await connection.query("SELECT \(unescaped: Self.infoColumns) FROM job j WHERE j.id = \(id)",
                                                       logger: logger).all().first else {
                throw StoreError.jobNotFound(id)
            }
            return try Self.info(row)
        }
    }

    public func jobs(limit: Int) async throws -> [JobInfo] {
        let logger = logger
        return try await database.withConnection { connection in
            try await connection.query("SELECT \(unescaped: Self.infoColumns) FROM job j ORDER BY j.created_seq DESC LIMIT \(max(0, limit))",
                                       logger: logger).all().map(Self.info)
        }
    }

    public func results(jobID: String, afterSeq: Int, limit: Int) async throws -> [JobResult] {
        let logger = logger
        return try await database.withConnection { connection in
            guard !(try await connection.query("SELECT 1 AS x FROM job WHERE id = \(jobID)", logger: logger).all().isEmpty) else {
                throw StoreError.jobNotFound(jobID)
            }
            return try await connection.query("""
                SELECT seq, item_id, ok, line FROM job_result WHERE job_id = \(jobID) AND seq > \(afterSeq) ORDER BY seq LIMIT \(max(0, limit))
                """, logger: logger).all().map { row in
                JobResult(seq: try row.value("seq"), itemID: try row.value("item_id"), ok: try row.value("ok"), line: try row.value("line"))
            }
        }
    }

    public func cancelJob(id: String) async throws -> JobInfo {
        let logger = logger
        let found = try await database.withConnection { connection in
            try await connection.query("""
                UPDATE job SET state = CASE WHEN state IN ('submitting', 'queued', 'running') THEN 'cancelled' ELSE state END,
                    finished_at = CASE WHEN state IN ('submitting', 'queued', 'running') THEN now() ELSE finished_at END
                WHERE id = \(id) RETURNING id
                """, logger: logger).all()
        }
        guard !found.isEmpty else { throw StoreError.jobNotFound(id) }
        return try await job(id: id)
    }

    public func failJob(id: String, error: String) async throws {
        let logger = logger
        try await database.withConnection { connection in
            try await connection.query("""
                UPDATE job SET state = 'failed', error = \(error), finished_at = now() WHERE id = \(id) AND state IN ('queued', 'running')
                """, logger: logger)
        }
    }

    public func setSummary(jobID: String, summary: String) async throws {
        let logger = logger
        try await database.withConnection { connection in
            try await connection.query("UPDATE job SET summary = \(summary) WHERE id = \(jobID)", logger: logger)
        }
    }

    // MARK: - Working

    public func registerWorker(_ worker: WorkerRecord) async throws {
        let logger = logger
        try await database.withConnection { connection in
            try await connection.query("""
                INSERT INTO job_worker (id, host, pid, concurrency, state) VALUES (\(worker.id), \(worker.host), \(worker.pid), \(worker.concurrency), \(worker.state.rawValue))
                ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, concurrency = EXCLUDED.concurrency,
                    state = EXCLUDED.state, heartbeat_at = now()
                """, logger: logger)
        }
    }

    public func claim(worker: String, tasks: [String], limit: Int, lease: Duration) async throws -> [ClaimedItem] {
        guard !tasks.isEmpty, limit > 0 else { return [] }
        let seconds = Self.seconds(lease), logger = logger
        return try await database.transaction { connection in
            // Two index-driven steps (one query over both kinds sorted every claimable row: 0.4 s at 500,000 items;
            // these take well under a millisecond): expired leases first, then queued items.
            var binds = PostgresBindings()
            try binds.append(worker)
            try binds.append(seconds)
            try binds.append(tasks)
            try binds.append(limit)
            var rows = try await connection.query(PostgresQuery(unsafeSQL: Self.claimExpired, binds: binds), logger: logger).all()
            if rows.count < limit {
                var queuedBinds = PostgresBindings()
                try queuedBinds.append(worker)
                try queuedBinds.append(seconds)
                try queuedBinds.append(tasks)
                try queuedBinds.append(limit - rows.count)
                rows += try await connection.query(PostgresQuery(unsafeSQL: Self.claimQueued, binds: queuedBinds), logger: logger).all()
            }
            var claimed: [ClaimedItem] = []
            var expiredBy: [String: Int] = [:]
            for row in rows {
                let from = try row.value("took_over_from", as: String?.self)
                if let from { expiredBy[from, default: 0] += 1 }
                claimed.append(ClaimedItem(key: JobItemKey(jobID: try row.value("job_id"), seq: try row.value("seq")),
                                           itemID: try row.value("item_id"), record: try row.value("record"),
                                           imageSHA256: try row.value("image_sha256"), attempts: try row.value("attempts"),
                                           maxAttempts: try row.value("max_attempts"), lastError: try row.value("last_error"),
                                           tookOverFrom: from, task: try row.value("task"), spec: try row.value("spec")))
            }
            for (lost, count) in expiredBy {
                try await connection.query("UPDATE job_worker SET lease_expiries = lease_expiries + \(count) WHERE id = \(lost)", logger: logger)
            }
            let jobIDs = Array(Set(claimed.map(\.key.jobID)))
            if !jobIDs.isEmpty {
                try await connection.query("""
                    UPDATE job SET state = 'running', started_at = now() WHERE id = ANY(\(jobIDs)) AND state = 'queued'
                    """, logger: logger)
            }
            return claimed.sorted { ($0.key.jobID, $0.key.seq) < ($1.key.jobID, $1.key.seq) }
        }
    }

    public func renewLeases(worker: String, items: [JobItemKey], lease: Duration, counters: WorkerCounters,
                            state: WorkerState) async throws -> Set<JobItemKey> {
        let seconds = Self.seconds(lease), logger = logger
        let jobIDs = items.map(\.jobID), seqs = items.map(\.seq)
        return try await database.transaction { connection in
            var held = Set<JobItemKey>()
            if !items.isEmpty {
                for row in try await connection.query("""
                    UPDATE job_item i SET lease_until = now() + \(seconds) * interval '1 second'
                    FROM unnest(\(jobIDs)::text[], \(seqs)::int8[]) AS k(job_id, seq)
                    WHERE i.job_id = k.job_id AND i.seq = k.seq AND i.state = 'running' AND i.worker_id = \(worker)
                    RETURNING i.job_id, i.seq
                    """, logger: logger).all() {
                    held.insert(JobItemKey(jobID: try row.value("job_id"), seq: try row.value("seq")))
                }
            }
            try await connection.query("""
                UPDATE job_worker SET claimed = \(counters.claimed), succeeded = \(counters.succeeded), failed = \(counters.failed),
                    retries = \(counters.retries), in_flight = \(counters.inFlight), state = \(state.rawValue), heartbeat_at = now()
                WHERE id = \(worker)
                """, logger: logger)
            return held
        }
    }

    public func complete(_ key: JobItemKey, worker: String, ok: Bool, line: String) async throws -> Bool {
        let logger = logger
        return try await database.transaction { connection in
            let inserted = try await connection.query("""
                INSERT INTO job_result (job_id, seq, item_id, ok, line, worker_id)
                SELECT job_id, seq, item_id, \(ok), \(line), \(worker) FROM job_item WHERE job_id = \(key.jobID) AND seq = \(key.seq)
                ON CONFLICT (job_id, seq) DO NOTHING
                RETURNING seq
                """, logger: logger).all()
            guard !inserted.isEmpty else { return false }
            try await connection.query("""
                UPDATE job_item SET state = 'done', lease_until = NULL WHERE job_id = \(key.jobID) AND seq = \(key.seq)
                """, logger: logger)
            try await connection.query("""
                UPDATE job SET done = done + 1, failed = failed + \(ok ? 0 : 1),
                    finished_at = CASE WHEN done + 1 >= total AND state IN ('queued', 'running') THEN now() ELSE finished_at END,
                    state = CASE WHEN done + 1 >= total AND state IN ('queued', 'running') THEN 'completed' ELSE state END
                WHERE id = \(key.jobID)
                """, logger: logger)
            return true
        }
    }

    public func retry(_ key: JobItemKey, worker: String, error: String, after: Duration) async throws {
        let seconds = Self.seconds(after), logger = logger
        try await database.withConnection { connection in
            try await connection.query("""
                UPDATE job_item SET state = 'queued', available_at = now() + \(seconds) * interval '1 second', worker_id = NULL,
                    lease_until = NULL, last_error = \(error)
                WHERE job_id = \(key.jobID) AND seq = \(key.seq) AND state = 'running' AND worker_id = \(worker)
                """, logger: logger)
        }
    }

    public func release(_ keys: [JobItemKey], worker: String) async throws {
        guard !keys.isEmpty else { return }
        let jobIDs = keys.map(\.jobID), seqs = keys.map(\.seq), logger = logger
        try await database.withConnection { connection in
            try await connection.query("""
                UPDATE job_item i SET state = 'queued', available_at = now(), worker_id = NULL, lease_until = NULL,
                    attempts = GREATEST(i.attempts - 1, 0)
                FROM unnest(\(jobIDs)::text[], \(seqs)::int8[]) AS k(job_id, seq)
                WHERE i.job_id = k.job_id AND i.seq = k.seq AND i.state = 'running' AND i.worker_id = \(worker)
                """, logger: logger)
        }
    }

    public func images(_ hashes: [String]) async throws -> [String: Data] {
        guard !hashes.isEmpty else { return [:] }
        let logger = logger
        return try await database.withConnection { connection in
            var out: [String: Data] = [:]
            for row in try await connection.query("SELECT sha256, data FROM job_image WHERE sha256 = ANY(\(hashes))", logger: logger).all() {
                out[try row.value("sha256")] = try row.value("data", as: Data.self)
            }
            return out
        }
    }

    public func pendingItems(tasks: [String]) async throws -> Int {
        guard !tasks.isEmpty else { return 0 }
        let logger = logger
        return try await database.withConnection { connection in
            try await connection.query("""
                SELECT count(*) AS n FROM job_item i JOIN job j ON j.id = i.job_id
                WHERE j.state IN ('queued', 'running') AND j.task = ANY(\(tasks)) AND i.state IN ('queued', 'running')
                """, logger: logger).all().first?.value("n", as: Int.self) ?? 0
        }
    }

    public func statistics() async throws -> QueueStatistics {
        let logger = logger
        return try await database.withConnection { connection in
            let items = try await connection.query("""
                SELECT count(*) FILTER (WHERE i.state = 'queued') AS queued,
                       count(*) FILTER (WHERE i.state = 'running' AND i.lease_until >= now()) AS claimed,
                       count(*) FILTER (WHERE i.state = 'running' AND i.lease_until < now()) AS expired
                FROM job_item i JOIN job j ON j.id = i.job_id
                WHERE j.state IN ('queued', 'running') AND i.state <> 'done'
                """, logger: logger).all().first
            var byState: [JobState: Int] = [:]
            for row in try await connection.query("SELECT state, count(*) AS n FROM job GROUP BY state", logger: logger).all() {
                if let state = JobState(rawValue: try row.value("state")) { byState[state] = try row.value("n") }
            }
            let workers = try await connection.query("""
                SELECT * FROM job_worker ORDER BY heartbeat_at DESC LIMIT 100
                """, logger: logger).all().map { row in
                WorkerRecord(id: try row.value("id"), host: try row.value("host"), pid: try row.value("pid"),
                             concurrency: try row.value("concurrency"),
                             state: WorkerState(rawValue: try row.value("state")) ?? .stopped,
                             counters: WorkerCounters(claimed: try row.value("claimed"), succeeded: try row.value("succeeded"),
                                                      failed: try row.value("failed"), retries: try row.value("retries"),
                                                      inFlight: try row.value("in_flight")),
                             leaseExpiries: try row.value("lease_expiries"), startedAt: try row.value("started_at"),
                             heartbeatAt: try row.value("heartbeat_at"))
            }
            return QueueStatistics(queued: try items?.value("queued") ?? 0, claimed: try items?.value("claimed") ?? 0,
                                   expired: try items?.value("expired") ?? 0, jobsByState: byState, workers: workers)
        }
    }

    // MARK: - Claim statements ($1 worker, $2 lease seconds, $3 task tags, $4 most items)

    /// Leases the picked rows; `picked` names `job_id`, `seq` and `prior_worker` (the worker whose lease expired).
    static func claim(picking picked: String) -> String {
        """
        WITH picked AS (\(picked))
        UPDATE job_item i SET state = 'running', worker_id = $1, attempts = i.attempts + 1,
            lease_until = now() + $2::float8 * interval '1 second'
        FROM picked p, job j
        WHERE i.job_id = p.job_id AND i.seq = p.seq AND j.id = i.job_id
        RETURNING i.job_id, i.seq, i.item_id, i.record, i.image_sha256, i.attempts, i.last_error, j.max_attempts, j.task, j.spec,
            p.prior_worker AS took_over_from
        """
    }

    /// Items whose lease ran out, soonest expired first, through the partial index on `lease_until`.
    static let claimExpired = claim(picking: """
        SELECT i.job_id, i.seq, i.worker_id AS prior_worker
        FROM job_item i JOIN job j ON j.id = i.job_id
        WHERE i.state = 'running' AND i.lease_until < now() AND j.state IN ('queued', 'running') AND j.task = ANY($3::text[])
        ORDER BY i.lease_until
        LIMIT $4
        FOR UPDATE OF i SKIP LOCKED
        """)

    /// Queued items of the oldest open job first, in input order, through the partial index on (job, seq).
    static let claimQueued = claim(picking: """
        SELECT q.job_id, q.seq, NULL::text AS prior_worker
        FROM (SELECT id FROM job WHERE state IN ('queued', 'running') AND task = ANY($3::text[]) ORDER BY created_seq) oldest
        CROSS JOIN LATERAL (
            SELECT i.job_id, i.seq FROM job_item i
            WHERE i.job_id = oldest.id AND i.state = 'queued' AND i.available_at <= now()
            ORDER BY i.seq
            LIMIT $4
            FOR UPDATE SKIP LOCKED
        ) q
        LIMIT $4
        """)

    // MARK: - Helpers

    static func info(_ row: PostgresRandomAccessRow) throws -> JobInfo {
        let elapsed = try row.value("elapsed_s", as: Double?.self)  // nil before the first claim
        let recent = try row.value("recent", as: Int.self)
        var rate: Double?
        if let elapsed, elapsed >= 1 { rate = Double(recent) / min(60, elapsed) }
        return JobInfo(id: try row.value("id"), task: try row.value("task"), spec: try row.value("spec"),
                       state: JobState(rawValue: try row.value("state")) ?? .failed, source: try row.value("source"),
                       total: try row.value("total"), done: try row.value("done"), failed: try row.value("failed"),
                       running: try row.value("running"), createdAt: try row.value("created_at"), startedAt: try row.value("started_at"),
                       finishedAt: try row.value("finished_at"), error: try row.value("error"), summary: try row.value("summary"),
                       itemsPerSecond: rate)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
