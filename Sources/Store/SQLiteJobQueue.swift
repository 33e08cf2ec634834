import Foundation
import GRDB

/// `JobQueue` in SQLite through GRDB: the embedded default (`postlens serve` without `--database` keeps its batch jobs
/// in the history file, so they survive a restart). One writer at a time, so a claim needs no row locks: the write
/// transaction is the lock. Times are integer milliseconds since 1970, read from this machine's clock (one machine).
///
/// Schema (`migrator`, identifiers `jobs-v…`, beside the conversation tables when the file is shared):
/// - `job(id PK, task, spec, state, source, total, done, failed, max_attempts, created_at, started_at, finished_at,
///   error, summary)`
/// - `job_item(job_id → job, seq, item_id, record, image_sha256, state queued|running|done, attempts, available_at,
///   worker_id, lease_until, last_error, PK(job_id, seq))`
/// - `job_result(job_id, seq → job_item, item_id, ok, line, worker_id, finished_at, PK(job_id, seq))` — the
///   primary key is what makes a second result for an item impossible
/// - `job_image(sha256 PK, data)`, `job_worker(id PK, host, pid, concurrency, state, counters, heartbeat_at, …)`
public final class SQLiteJobQueue: JobQueue {
    public let writer: any DatabaseWriter
    public var backendName: String { "sqlite" }

    public static let migrationNames = ["jobs-v1-jobs-items-results-workers"]

    /// Opens the queue's tables in `writer` (creating them when missing).
    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        try Self.migrator.migrate(writer)
    }

    /// A private in-memory queue (tests, `serve --no-history`).
    public static func inMemory() throws -> SQLiteJobQueue {
        try SQLiteJobQueue(writer: DatabaseQueue(configuration: SQLiteConversationStore.configuration()))
    }

    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(migrationNames[0]) { db in
            try db.execute(sql: """
                CREATE TABLE job (
                    id TEXT PRIMARY KEY NOT NULL,
                    task TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('submitting', 'queued', 'running', 'completed', 'cancelled', 'failed')),
                    source TEXT NOT NULL,
                    total INTEGER NOT NULL,
                    done INTEGER NOT NULL DEFAULT 0,
                    failed INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    started_at INTEGER,
                    finished_at INTEGER,
                    error TEXT,
                    summary TEXT
                );
                CREATE TABLE job_item (
                    job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                    seq INTEGER NOT NULL,
                    item_id TEXT NOT NULL,
                    record TEXT,
                    image_sha256 TEXT,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    available_at INTEGER NOT NULL,
                    worker_id TEXT,
                    lease_until INTEGER,
                    last_error TEXT,
                    PRIMARY KEY (job_id, seq)
                );
                CREATE INDEX job_item_queued ON job_item(job_id, state, seq);
                CREATE INDEX job_item_leased ON job_item(state, lease_until);
                CREATE TABLE job_result (
                    job_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    item_id TEXT NOT NULL,
                    ok INTEGER NOT NULL,
                    line TEXT NOT NULL,
                    worker_id TEXT,
                    finished_at INTEGER NOT NULL,
                    PRIMARY KEY (job_id, seq),
                    FOREIGN KEY (job_id, seq) REFERENCES job_item(job_id, seq) ON DELETE CASCADE
                );
                CREATE INDEX job_result_finished ON job_result(job_id, finished_at);
                CREATE TABLE job_image (sha256 TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL);
                CREATE TABLE job_worker (
                    id TEXT PRIMARY KEY NOT NULL,
                    host TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    concurrency INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    claimed INTEGER NOT NULL DEFAULT 0,
                    succeeded INTEGER NOT NULL DEFAULT 0,
                    failed INTEGER NOT NULL DEFAULT 0,
                    retries INTEGER NOT NULL DEFAULT 0,
                    in_flight INTEGER NOT NULL DEFAULT 0,
                    lease_expiries INTEGER NOT NULL DEFAULT 0,
                    started_at INTEGER NOT NULL,
                    heartbeat_at INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }

    // MARK: - Submitting

    public func createJob(_ job: NewJob) async throws {
        try await writer.write { db in
            try db.execute(sql: """
                INSERT INTO job (id, task, spec, state, source, total, max_attempts, created_at) VALUES (?, ?, ?, 'submitting', ?, ?, ?, ?)
                """, arguments: [job.id, job.task, job.spec, job.source, job.total, max(1, job.maxAttempts), Self.nowMs()])
        }
    }

    public func addItems(_ items: [NewJobItem], to jobID: String) async throws {
        let now = Self.nowMs()
        try await writer.write { db in
            guard try Self.jobState(db, id: jobID) == .submitting else {
                throw StoreError.invalid("job \(jobID) is not being submitted; items can only be added before it is opened")
            }
            var finished = 0, failed = 0
            for item in items {
                var hash: String?
                if let image = item.image {
                    let digest = sha256Hex(image)
                    try db.execute(sql: "INSERT INTO job_image (sha256, data) VALUES (?, ?) ON CONFLICT(sha256) DO NOTHING",
                                   arguments: [digest, image])
                    hash = digest
                }
                try db.execute(sql: """
                    INSERT INTO job_item (job_id, seq, item_id, record, image_sha256, state, available_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [jobID, item.seq, item.itemID, item.record, hash, item.errorLine == nil ? "queued" : "done", now])
                if let line = item.errorLine {
                    try db.execute(sql: """
                        INSERT INTO job_result (job_id, seq, item_id, ok, line, worker_id, finished_at) VALUES (?, ?, ?, 0, ?, NULL, ?)
                        """, arguments: [jobID, item.seq, item.itemID, line, now])
                    finished += 1
                    failed += 1
                }
            }
            try db.execute(sql: "UPDATE job SET done = done + ?, failed = failed + ? WHERE id = ?", arguments: [finished, failed, jobID])
        }
    }

    public func openJob(id: String) async throws -> JobInfo {
        try await writer.write { db in
            guard let state = try Self.jobState(db, id: id) else { throw StoreError.jobNotFound(id) }
            guard state == .submitting else { return try Self.info(db, id: id) }
            let (total, count, done) = try Self.counts(db, id: id)
            guard count == total else {
                throw StoreError.invalid("job \(id) was announced with \(total) items but has \(count)")
            }
            let now = Self.nowMs()
            if done >= total {
                try db.execute(sql: "UPDATE job SET state = 'completed', finished_at = ? WHERE id = ?", arguments: [now, id])
            } else {
                try db.execute(sql: "UPDATE job SET state = 'queued' WHERE id = ?", arguments: [id])
            }
            return try Self.info(db, id: id)
        }
    }

    // MARK: - Reading and steering

    public func job(id: String) async throws -> JobInfo {
        try await writer.read { db in try Self.info(db, id: id) }
    }

    public func jobs(limit: Int) async throws -> [JobInfo] {
        try await writer.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM job ORDER BY created_at DESC, rowid DESC LIMIT ?", arguments: [max(0, limit)])
                .map { try Self.info(db, id: $0) }
        }
    }

    public func results(jobID: String, afterSeq: Int, limit: Int) async throws -> [JobResult] {
        try await writer.read { db in
            guard try Self.jobState(db, id: jobID) != nil else { throw StoreError.jobNotFound(jobID) }
            return try Row.fetchAll(db, sql: """
                SELECT seq, item_id, ok, line FROM job_result WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?
                """, arguments: [jobID, afterSeq, max(0, limit)]).map { row in
                JobResult(seq: row["seq"], itemID: row["item_id"], ok: (row["ok"] as Int) != 0, line: row["line"])
            }
        }
    }

    public func cancelJob(id: String) async throws -> JobInfo {
        try await writer.write { db in
            guard let state = try Self.jobState(db, id: id) else { throw StoreError.jobNotFound(id) }
            if !state.isFinal {
                try db.execute(sql: "UPDATE job SET state = 'cancelled', finished_at = ? WHERE id = ?", arguments: [Self.nowMs(), id])
            }
            return try Self.info(db, id: id)
        }
    }

    public func failJob(id: String, error: String) async throws {
        try await writer.write { db in
            try db.execute(sql: """
                UPDATE job SET state = 'failed', error = ?, finished_at = ? WHERE id = ? AND state IN ('queued', 'running')
                """, arguments: [error, Self.nowMs(), id])
        }
    }

    public func setSummary(jobID: String, summary: String) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE job SET summary = ? WHERE id = ?", arguments: [summary, jobID])
        }
    }

    // MARK: - Working

    public func registerWorker(_ worker: WorkerRecord) async throws {
        let now = Self.nowMs()
        try await writer.write { db in
            try db.execute(sql: """
                INSERT INTO job_worker (id, host, pid, concurrency, state, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid, concurrency = excluded.concurrency,
                    state = excluded.state, heartbeat_at = excluded.heartbeat_at
                """, arguments: [worker.id, worker.host, worker.pid, worker.concurrency, worker.state.rawValue, now, now])
        }
    }

    public func claim(worker: String, tasks: [String], limit: Int, lease: Duration) async throws -> [ClaimedItem] {
        guard !tasks.isEmpty, limit > 0 else { return [] }
        let now = Self.nowMs()
        let until = now + Self.ms(lease)
        return try await writer.write { db in
            // Expired leases first, then queued items of the oldest open job first, each through its index.
            let columns = "i.job_id, i.seq, i.item_id, i.record, i.image_sha256, i.attempts, i.state, i.worker_id, i.last_error, j.max_attempts, j.task, j.spec"
            let open = "j.state IN ('queued', 'running') AND j.task IN (\(Self.placeholders(tasks.count)))"
            let taskArguments = tasks.map { $0 as any DatabaseValueConvertible }
            var rows = try Row.fetchAll(db, sql: """
                SELECT \(columns) FROM job_item i JOIN job j ON j.id = i.job_id
                WHERE i.state = 'running' AND i.lease_until < ? AND \(open)
                ORDER BY i.lease_until LIMIT ?
                """, arguments: StatementArguments([now] + taskArguments + [limit]))
            let jobs = try String.fetchAll(db, sql: "SELECT id FROM job j WHERE \(open) ORDER BY created_at, rowid",
                                           arguments: StatementArguments(taskArguments))
            for jobID in jobs where rows.count < limit {
                rows += try Row.fetchAll(db, sql: """
                    SELECT \(columns) FROM job_item i JOIN job j ON j.id = i.job_id
                    WHERE i.job_id = ? AND i.state = 'queued' AND i.available_at <= ?
                    ORDER BY i.seq LIMIT ?
                    """, arguments: [jobID, now, limit - rows.count])
            }
            var claimed: [ClaimedItem] = []
            var started = Set<String>()
            for row in rows {
                let jobID: String = row["job_id"], seq: Int = row["seq"]
                let priorState: String = row["state"]
                let priorWorker: String? = priorState == "running" ? row["worker_id"] : nil
                try db.execute(sql: """
                    UPDATE job_item SET state = 'running', worker_id = ?, lease_until = ?, attempts = attempts + 1
                    WHERE job_id = ? AND seq = ?
                    """, arguments: [worker, until, jobID, seq])
                if let priorWorker {
                    try db.execute(sql: "UPDATE job_worker SET lease_expiries = lease_expiries + 1 WHERE id = ?", arguments: [priorWorker])
                }
                started.insert(jobID)
                claimed.append(ClaimedItem(key: JobItemKey(jobID: jobID, seq: seq), itemID: row["item_id"], record: row["record"],
                                           imageSHA256: row["image_sha256"], attempts: (row["attempts"] as Int) + 1,
                                           maxAttempts: row["max_attempts"], lastError: row["last_error"], tookOverFrom: priorWorker,
                                           task: row["task"], spec: row["spec"]))
            }
            for jobID in started {
                try db.execute(sql: "UPDATE job SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'",
                               arguments: [now, jobID])
            }
            return claimed
        }
    }

    public func renewLeases(worker: String, items: [JobItemKey], lease: Duration, counters: WorkerCounters,
                            state: WorkerState) async throws -> Set<JobItemKey> {
        let now = Self.nowMs()
        let until = now + Self.ms(lease)
        return try await writer.write { db in
            var held = Set<JobItemKey>()
            for key in items {
                try db.execute(sql: """
                    UPDATE job_item SET lease_until = ? WHERE job_id = ? AND seq = ? AND state = 'running' AND worker_id = ?
                    """, arguments: [until, key.jobID, key.seq, worker])
                if db.changesCount > 0 { held.insert(key) }
            }
            try db.execute(sql: """
                UPDATE job_worker SET claimed = ?, succeeded = ?, failed = ?, retries = ?, in_flight = ?, state = ?, heartbeat_at = ?
                WHERE id = ?
                """, arguments: [counters.claimed, counters.succeeded, counters.failed, counters.retries, counters.inFlight,
                                 state.rawValue, now, worker])
            return held
        }
    }

    public func complete(_ key: JobItemKey, worker: String, ok: Bool, line: String) async throws -> Bool {
        let now = Self.nowMs()
        return try await writer.write { db in
            guard let itemID = try String.fetchOne(db, sql: "SELECT item_id FROM job_item WHERE job_id = ? AND seq = ?",
                                                   arguments: [key.jobID, key.seq]) else {
                throw StoreError.jobNotFound(key.jobID)
            }
            try db.execute(sql: """
                INSERT INTO job_result (job_id, seq, item_id, ok, line, worker_id, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(job_id, seq) DO NOTHING
                """, arguments: [key.jobID, key.seq, itemID, ok ? 1 : 0, line, worker, now])
            guard db.changesCount > 0 else { return false }
            try db.execute(sql: "UPDATE job_item SET state = 'done', lease_until = NULL WHERE job_id = ? AND seq = ?",
                           arguments: [key.jobID, key.seq])
            try db.execute(sql: """
                UPDATE job SET done = done + 1, failed = failed + ?,
                    finished_at = CASE WHEN done + 1 >= total AND state IN ('queued', 'running') THEN ? ELSE finished_at END,
                    state = CASE WHEN done + 1 >= total AND state IN ('queued', 'running') THEN 'completed' ELSE state END
                WHERE id = ?
                """, arguments: [ok ? 0 : 1, now, key.jobID])
            return true
        }
    }

    public func retry(_ key: JobItemKey, worker: String, error: String, after: Duration) async throws {
        let at = Self.nowMs() + Self.ms(after)
        try await writer.write { db in
            try db.execute(sql: """
                UPDATE job_item SET state = 'queued', available_at = ?, worker_id = NULL, lease_until = NULL, last_error = ?
                WHERE job_id = ? AND seq = ? AND state = 'running' AND worker_id = ?
                """, arguments: [at, error, key.jobID, key.seq, worker])
        }
    }

    public func release(_ keys: [JobItemKey], worker: String) async throws {
        let now = Self.nowMs()
        try await writer.write { db in
            for key in keys {
                try db.execute(sql: """
                    UPDATE job_item SET state = 'queued', available_at = ?, worker_id = NULL, lease_until = NULL,
                        attempts = MAX(attempts - 1, 0)
                    WHERE job_id = ? AND seq = ? AND state = 'running' AND worker_id = ?
                    """, arguments: [now, key.jobID, key.seq, worker])
            }
        }
    }

    public func images(_ hashes: [String]) async throws -> [String: Data] {
        guard !hashes.isEmpty else { return [:] }
        return try await writer.read { db in
            var out: [String: Data] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT sha256, data FROM job_image WHERE sha256 IN (\(Self.placeholders(hashes.count)))",
                                        arguments: StatementArguments(hashes)) {
                out[row["sha256"]] = row["data"]
            }
            return out
        }
    }

    public func pendingItems(tasks: [String]) async throws -> Int {
        guard !tasks.isEmpty else { return 0 }
        return try await writer.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM job_item i JOIN job j ON j.id = i.job_id
                WHERE j.state IN ('queued', 'running') AND j.task IN (\(Self.placeholders(tasks.count))) AND i.state IN ('queued', 'running')
                """, arguments: StatementArguments(tasks)) ?? 0
        }
    }

    public func statistics() async throws -> QueueStatistics {
        let now = Self.nowMs()
        return try await writer.read { db in
            let items = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(i.state = 'queued'), 0) AS queued,
                       COALESCE(SUM(i.state = 'running' AND i.lease_until >= ?), 0) AS claimed,
                       COALESCE(SUM(i.state = 'running' AND i.lease_until < ?), 0) AS expired
                FROM job_item i JOIN job j ON j.id = i.job_id
                WHERE j.state IN ('queued', 'running') AND i.state <> 'done'
                """, arguments: [now, now])
            var byState: [JobState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { byState[state] = row["n"] }
            }
            let workers = try Row.fetchAll(db, sql: "SELECT * FROM job_worker ORDER BY heartbeat_at DESC LIMIT 100").map { row in
                WorkerRecord(id: row["id"], host: row["host"], pid: row["pid"], concurrency: row["concurrency"],
                             state: WorkerState(rawValue: row["state"]) ?? .stopped,
                             counters: WorkerCounters(claimed: row["claimed"], succeeded: row["succeeded"], failed: row["failed"],
                                                      retries: row["retries"], inFlight: row["in_flight"]),
                             leaseExpiries: row["lease_expiries"], startedAt: Self.date(row["started_at"]),
                             heartbeatAt: Self.date(row["heartbeat_at"]))
            }
            let queued: Int = items?["queued"] ?? 0, claimed: Int = items?["claimed"] ?? 0, expired: Int = items?["expired"] ?? 0
            return QueueStatistics(queued: queued, claimed: claimed, expired: expired, jobsByState: byState, workers: workers)
        }
    }

    // MARK: - Helpers

    static func jobState(_ db: Database, id: String) throws -> JobState? {
        try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [id]).flatMap(JobState.init(rawValue:))
    }

    /// (announced total, items stored, items with a result).
    static func counts(_ db: Database, id: String) throws -> (Int, Int, Int) {
        let row = try Row.fetchOne(db, sql: """
            SELECT total, done, (SELECT COUNT(*) FROM job_item WHERE job_id = job.id) AS items FROM job WHERE id = ?
            """, arguments: [id])
        return (row?["total"] ?? 0, row?["items"] ?? 0, row?["done"] ?? 0)
    }

    static func info(_ db: Database, id: String) throws -> JobInfo {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]) else {
            throw StoreError.jobNotFound(id)
        }
        let running = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_item WHERE job_id = ? AND state = 'running'", arguments: [id]) ?? 0
        let now = nowMs()
        var rate: Double?
        if let started: Int64 = row["started_at"] {
            let window = min(60_000, (row["finished_at"] as Int64? ?? now) - started)
            if window >= 1000 {
                let recent = try Int.fetchOne(db, sql: """
                    SELECT COUNT(*) FROM job_result WHERE job_id = ? AND worker_id IS NOT NULL AND finished_at > ?
                    """, arguments: [id, (row["finished_at"] as Int64? ?? now) - window]) ?? 0
                rate = Double(recent) / (Double(window) / 1000)
            }
        }
        return JobInfo(id: row["id"], task: row["task"], spec: row["spec"], state: JobState(rawValue: row["state"]) ?? .failed,
                       source: row["source"], total: row["total"], done: row["done"], failed: row["failed"], running: running,
                       createdAt: date(row["created_at"]), startedAt: (row["started_at"] as Int64?).map(date),
                       finishedAt: (row["finished_at"] as Int64?).map(date), error: row["error"], summary: row["summary"],
                       itemsPerSecond: rate)
    }

    static func placeholders(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }
    static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
    static func ms(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
