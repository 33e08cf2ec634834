import Foundation

/// Batch jobs and their items, shared by whoever submits them (`postlens jobs submit`, `POST /v1/batches`) and
/// whoever runs them (`postlens worker`, the server's own batch worker), on one machine (SQLite) or many (PostgreSQL).
///
/// The queue knows nothing about tasks: a job carries an opaque `spec` (JSON, written and read by `Analysis`) and a
/// `task` tag (`sentiment@1`) that workers claim by, so a worker never takes a job whose task version it lacks.
///
/// Delivery is at-least-once, results exactly once:
/// - `claim` hands out items under a lease (held by one worker until it expires); an item whose lease expired is
///   handed out again (its worker died, or lost the database), counting one more attempt.
/// - `complete` writes an item's one result row; a second write for the same item (a retry, or a worker that
///   finished after its lease was taken over) changes nothing and returns false.
/// Every call is one transaction: a failure leaves the queue as it was.
public protocol JobQueue: Sendable {
    /// `sqlite` or `postgresql`.
    var backendName: String { get }

    // MARK: Submitting

    /// Creates the job in state `submitting` (never claimed): add its items with `addItems`, then `openJob`.
    func createJob(_ job: NewJob) async throws
    /// Adds items (any number of calls; `seq` unique within the job). Image bytes are stored once by SHA-256.
    /// Items with an `errorLine` are recorded as finished at once.
    func addItems(_ items: [NewJobItem], to jobID: String) async throws
    /// Makes a submitted job claimable (`queued`), or `completed` when every item already has its result.
    /// Throws `StoreError.invalid` when the job's item count differs from its `total`.
    func openJob(id: String) async throws -> JobInfo

    // MARK: Reading and steering

    /// Throws `StoreError.jobNotFound`.
    func job(id: String) async throws -> JobInfo
    /// Newest first.
    func jobs(limit: Int) async throws -> [JobInfo]
    /// Finished items with `seq > afterSeq`, in input order, at most `limit` (page through a large job).
    func results(jobID: String, afterSeq: Int, limit: Int) async throws -> [JobResult]
    /// `queued`/`running`/`submitting` → `cancelled` (items in flight still finish and are recorded; none start).
    /// A job already finished is returned as it is.
    func cancelJob(id: String) async throws -> JobInfo
    /// Marks an open job `failed` with a reason (a worker found its spec unusable).
    func failJob(id: String, error: String) async throws
    /// Keeps a summary (JSON text) computed once the job is finished.
    func setSummary(jobID: String, summary: String) async throws

    // MARK: Working

    /// Announces a worker (or refreshes it after a restart with the same id).
    func registerWorker(_ worker: WorkerRecord) async throws
    /// Up to `limit` items of open jobs whose task is in `tasks`, oldest job first: queued items whose backoff has
    /// passed, and items whose lease expired. Each is leased to `worker` for `lease` and its attempt count raised.
    func claim(worker: String, tasks: [String], limit: Int, lease: Duration) async throws -> [ClaimedItem]
    /// Extends the leases `worker` still holds among `items` and stores its counters; returns the items still held
    /// (an item missing from the answer was taken over or finished elsewhere).
    func renewLeases(worker: String, items: [JobItemKey], lease: Duration, counters: WorkerCounters, state: WorkerState)
        async throws -> Set<JobItemKey>
    /// Records an item's final output line (`ok` false: its recorded error). Returns false when the item already had
    /// its result (nothing is written then).
    func complete(_ key: JobItemKey, worker: String, ok: Bool, line: String) async throws -> Bool
    /// Puts an item `worker` holds back in the queue after a transient failure, to be claimed after `after`.
    func retry(_ key: JobItemKey, worker: String, error: String, after: Duration) async throws
    /// Hands items back without counting the attempt (a worker stopping before it could finish them).
    func release(_ keys: [JobItemKey], worker: String) async throws
    /// Image bytes by SHA-256 (hex); hashes not stored are absent from the answer.
    func images(_ hashes: [String]) async throws -> [String: Data]
    /// Items of open jobs (tasks in `tasks`) not yet finished: queued, waiting out a backoff, or leased.
    func pendingItems(tasks: [String]) async throws -> Int
    /// Queue depth, leases and every worker's counters (for `/metrics` and `jobs status`).
    func statistics() async throws -> QueueStatistics
}

extension JobQueue {
    /// Every result of a job, in input order.
    public func allResults(jobID: String) async throws -> [JobResult] {
        var out: [JobResult] = []
        var after = -1
        while true {
            let page = try await results(jobID: jobID, afterSeq: after, limit: 2000)
            out += page
            guard let last = page.last, page.count == 2000 else { return out }
            after = last.seq
        }
    }
}
