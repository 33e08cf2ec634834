import Crypto
import Foundation

/// Where a job is in its life. `submitting` only while its items are being stored; the other five are what users see.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case submitting, queued, running, completed, cancelled, failed

    /// No item of the job will start any more.
    public var isFinal: Bool { self == .completed || self == .cancelled || self == .failed }
    /// Items may be claimed.
    public var isOpen: Bool { self == .queued || self == .running }
}

/// A job to store: what to run (`spec`, opaque JSON) over how many items.
public struct NewJob: Sendable {
    public var id: String
    /// `task@version`; workers claim only the tasks they know.
    public var task: String
    /// How to run it (task, options), as `Analysis` writes it.
    public var spec: String
    /// Number of items the job will have.
    public var total: Int
    /// Where it came from (`cli:posts.jsonl`, `api`), for listings.
    public var source: String
    /// Attempts per item before its last error is recorded as its result.
    public var maxAttempts: Int

    public init(id: String, task: String, spec: String, total: Int, source: String, maxAttempts: Int = 3) {
        self.id = id
        self.task = task
        self.spec = spec
        self.total = total
        self.source = source
        self.maxAttempts = maxAttempts
    }

    /// `job_` + 24 hex digits (`batch_` for jobs made through `/v1/batches`).
    public static func makeID(prefix: String = "job_") -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }
}

/// One input record of a job.
public struct NewJobItem: Sendable {
    /// 0-based input position, unique within the job; results come back in this order.
    public var seq: Int
    /// The record's id (or OpenAI's `custom_id`).
    public var itemID: String
    /// The record as JSON text; nil for a bad record (then `errorLine` is set).
    public var record: String?
    /// Image bytes that travel with the job (any worker on any machine can read them).
    public var image: Data?
    /// A record that could not be read: its final output line, recorded as the item's result at once.
    public var errorLine: String?

    public init(seq: Int, itemID: String, record: String?, image: Data? = nil, errorLine: String? = nil) {
        self.seq = seq
        self.itemID = itemID
        self.record = record
        self.image = image
        self.errorLine = errorLine
    }
}

/// A job as stored, with its progress.
public struct JobInfo: Sendable, Equatable {
    public var id: String
    public var task: String
    public var spec: String
    public var state: JobState
    public var source: String
    public var total: Int
    /// Items with a result (succeeded + failed).
    public var done: Int
    /// Items whose result is a recorded error.
    public var failed: Int
    /// Items leased to a worker now.
    public var running: Int
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var error: String?
    /// JSON text, once computed after the job finished.
    public var summary: String?
    /// Items finished by workers per second over the last minute (nil before any).
    public var itemsPerSecond: Double?

    public init(id: String, task: String, spec: String, state: JobState, source: String, total: Int, done: Int, failed: Int,
                running: Int, createdAt: Date, startedAt: Date?, finishedAt: Date?, error: String?, summary: String?,
                itemsPerSecond: Double?) {
        self.id = id
        self.task = task
        self.spec = spec
        self.state = state
        self.source = source
        self.total = total
        self.done = done
        self.failed = failed
        self.running = running
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.error = error
        self.summary = summary
        self.itemsPerSecond = itemsPerSecond
    }

    public var succeeded: Int { done - failed }
    /// Items not yet finished and not leased.
    public var queued: Int { max(0, total - done - running) }
    /// Seconds left at the recent rate; nil when unknown or finished.
    public var etaSeconds: Double? {
        guard !state.isFinal, let rate = itemsPerSecond, rate > 0 else { return nil }
        return Double(total - done) / rate
    }
}

/// One finished item.
public struct JobResult: Sendable, Equatable {
    public var seq: Int
    public var itemID: String
    public var ok: Bool
    /// The item's output line (JSON text).
    public var line: String

    public init(seq: Int, itemID: String, ok: Bool, line: String) {
        self.seq = seq
        self.itemID = itemID
        self.ok = ok
        self.line = line
    }
}

/// An item's identity.
public struct JobItemKey: Sendable, Hashable, CustomStringConvertible {
    public var jobID: String
    public var seq: Int
    public init(jobID: String, seq: Int) {
        self.jobID = jobID
        self.seq = seq
    }
    public var description: String { "\(jobID)#\(seq)" }
}

/// An item leased to a worker.
public struct ClaimedItem: Sendable, Equatable {
    public var key: JobItemKey
    public var itemID: String
    public var record: String?
    /// SHA-256 of the image stored with the job, when there is one.
    public var imageSHA256: String?
    /// This claim included (1 for a first run).
    public var attempts: Int
    public var maxAttempts: Int
    /// The last transient error, when this is a retry.
    public var lastError: String?
    /// The worker whose lease expired, when this claim took the item over.
    public var tookOverFrom: String?
    public var task: String
    public var spec: String

    public init(key: JobItemKey, itemID: String, record: String?, imageSHA256: String?, attempts: Int, maxAttempts: Int,
                lastError: String?, tookOverFrom: String?, task: String, spec: String) {
        self.key = key
        self.itemID = itemID
        self.record = record
        self.imageSHA256 = imageSHA256
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.lastError = lastError
        self.tookOverFrom = tookOverFrom
        self.task = task
        self.spec = spec
    }

    /// More attempts than allowed: record the error instead of running it again.
    public var isExhausted: Bool { attempts > maxAttempts }
}

/// `running` while claiming, `draining` after SIGTERM (finishing what it holds), `stopped` at exit.
public enum WorkerState: String, Codable, Sendable { case running, draining, stopped }

/// What a worker has done since it started.
public struct WorkerCounters: Sendable, Equatable {
    public var claimed = 0
    public var succeeded = 0
    public var failed = 0
    public var retries = 0
    public var inFlight = 0
    public init(claimed: Int = 0, succeeded: Int = 0, failed: Int = 0, retries: Int = 0, inFlight: Int = 0) {
        self.claimed = claimed
        self.succeeded = succeeded
        self.failed = failed
        self.retries = retries
        self.inFlight = inFlight
    }
}

/// A worker as the database knows it.
public struct WorkerRecord: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int
    public var concurrency: Int
    public var state: WorkerState
    public var counters: WorkerCounters
    /// Leases this worker held that expired and were taken over by others.
    public var leaseExpiries: Int
    public var startedAt: Date
    public var heartbeatAt: Date

    public init(id: String, host: String, pid: Int, concurrency: Int, state: WorkerState = .running,
                counters: WorkerCounters = WorkerCounters(), leaseExpiries: Int = 0, startedAt: Date = Date(),
                heartbeatAt: Date = Date()) {
        self.id = id
        self.host = host
        self.pid = pid
        self.concurrency = concurrency
        self.state = state
        self.counters = counters
        self.leaseExpiries = leaseExpiries
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// The queue as a whole.
public struct QueueStatistics: Sendable, Equatable {
    /// Items of open jobs waiting to be claimed (backoff included): the queue depth.
    public var queued: Int
    /// Items leased now, lease still valid.
    public var claimed: Int
    /// Items whose lease ran out and that no one has taken over yet.
    public var expired: Int
    public var jobsByState: [JobState: Int]
    /// Newest heartbeat first.
    public var workers: [WorkerRecord]

    public init(queued: Int, claimed: Int, expired: Int, jobsByState: [JobState: Int], workers: [WorkerRecord]) {
        self.queued = queued
        self.claimed = claimed
        self.expired = expired
        self.jobsByState = jobsByState
        self.workers = workers
    }
}

/// SHA-256 as lower-case hex.
public func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}
