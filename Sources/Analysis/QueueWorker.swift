import Engine
import Foundation
import JSON
import Logging
import Store
import Synchronization

/// How a queue worker runs.
public struct WorkerOptions: Sendable {
    /// Items in flight at once. They go to the engine together, which decodes them in one batch (continuous batching),
    /// so a few more than one keeps the CPU busy while one item is in its vision or prefill phase.
    public var concurrency = 4
    /// How long a claimed item stays ours without a renewal; renewed every third of it while the item runs. A worker
    /// killed with SIGKILL loses its items for this long, then any worker takes them over.
    public var lease: Duration = .seconds(60)
    /// How often an idle worker asks for work.
    public var pollInterval: Duration = .seconds(1)
    /// Leave when no open job has an unfinished item (none queued, none leased).
    public var exitWhenIdle = false
    /// Backoff before a retried item is claimable again: `retryBase × 2^(attempt−1)`, at most `retryCap`, ±20 %.
    public var retryBase: Duration = .seconds(2)
    public var retryCap: Duration = .seconds(60)
    public init() {}
}

/// Runs the items of a `JobQueue` through a `PostAnalyzer` (the model): claims a few at a time under a lease, keeps
/// the leases alive while they run, writes each result once, and retries transient failures with backoff.
///
/// The same worker runs inside `postlens worker` (any number, on any machines) and inside `postlens serve` (the
/// server's own batch jobs). Failure behaviour (docs/scaling.md):
/// - the database goes away: claims and writes are retried with backoff until it answers again; a finished item's
///   result waits in memory meanwhile;
/// - the worker is killed: its leases expire and other workers take the items over (at-least-once processing; the
///   result table still holds one row per item);
/// - `drain()` (SIGTERM): no new claims; the items in flight finish and are recorded, then `run()` returns;
/// - `abandon()` (a second signal): the items in flight are handed back at once, without counting the attempt.
public final class QueueWorker: Sendable {
    public let id: String
    public let queue: any JobQueue
    public let analyzer: any PostAnalyzer
    public let baseParameters: GenerationParameters
    public let options: WorkerOptions
    let logger: Logger
    /// Task tags this worker claims.
    let tasks: [String]

    struct State {
        var counters = WorkerCounters()
        var inFlight = Set<JobItemKey>()
        var draining = false
        var abandoned = false
        /// The database stopped answering (logged once per outage).
        var databaseDown = false
        var runners: [String: TaskRunner] = [:]
    }

    private let state = Mutex(State())
    private let wakeup = Wakeup()

    public init(id: String = QueueWorker.makeID(), queue: any JobQueue, analyzer: any PostAnalyzer,
                baseParameters: GenerationParameters = GenerationParameters(), options: WorkerOptions = WorkerOptions(),
                tasks: [String] = JobSpec.runnableTags, logger: Logger = Logger(label: "postlens.worker")) {
        self.id = id
        self.queue = queue
        self.analyzer = analyzer
        self.baseParameters = baseParameters
        self.options = options
        self.tasks = tasks
        self.logger = logger
    }

    /// `host:pid:random`, unique across machines and restarts.
    public static func makeID() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(6).lowercased())"
    }

    public var counters: WorkerCounters { state.withLock { s in var c = s.counters; c.inFlight = s.inFlight.count; return c } }
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Look for work now (a job was just submitted) instead of at the next poll.
    public func poke() { wakeup.signal() }

    /// Stop claiming; `run()` returns once the items in flight are recorded.
    public func drain() {
        state.withLock { $0.draining = true }
        wakeup.signal()
    }

    /// Hands the items in flight back to the queue (their attempt not counted) and makes `run()` return at once.
    public func abandon() async {
        let held = state.withLock { s -> [JobItemKey] in
            s.draining = true
            s.abandoned = true
            return Array(s.inFlight)
        }
        wakeup.signal()
        do {
            try await queue.release(held, worker: id)
            logger.notice("handed back the items in flight", metadata: ["worker": "\(id)", "items": "\(held.count)"])
        } catch {
            logger.warning("could not hand the items back; they return to the queue when their lease expires",
                           metadata: ["worker": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: - The loop

    /// Works until drained, abandoned, or (with `exitWhenIdle`) out of work; returns what it did.
    @discardableResult
    public func run() async throws -> WorkerCounters {
        let record = WorkerRecord(id: id, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), concurrency: options.concurrency)
        try await persist("register the worker") { [queue] in try await queue.registerWorker(record) }
        logger.info("worker started", metadata: [
            "worker": "\(id)", "backend": "\(queue.backendName)", "concurrency": "\(options.concurrency)",
            "lease_s": "\(options.lease.components.seconds)", "tasks": "\(tasks.joined(separator: ","))",
        ])
        let heartbeat = Task { [self] in await heartbeatLoop() }
        await withDiscardingTaskGroup { group in
            while !state.withLock({ $0.draining }) {
                let free = options.concurrency - state.withLock { $0.inFlight.count }
                if free > 0 {
                    let items: [ClaimedItem]
                    do {
                        items = try await queue.claim(worker: id, tasks: tasks, limit: free, lease: options.lease)
                        databaseAnswered()
                    } catch {
                        databaseFailed(error, doing: "claim items")
                        await wakeup.wait(upTo: options.pollInterval)
                        continue
                    }
                    for item in items {
                        state.withLock { s in
                            s.inFlight.insert(item.key)
                            s.counters.claimed += 1
                        }
                        if let from = item.tookOverFrom {
                            logger.notice("took over an item whose lease expired",
                                          metadata: ["item": "\(item.key)", "from": "\(from)", "attempt": "\(item.attempts)"])
                        }
                        group.addTask { [self] in await process(item) }
                    }
                    if !items.isEmpty { continue }  // room may be left: ask again at once
                }
                if options.exitWhenIdle, state.withLock({ $0.inFlight.isEmpty }) {
                    if let pending = try? await queue.pendingItems(tasks: tasks), pending == 0 { break }
                }
                await wakeup.wait(upTo: options.pollInterval)
            }
            // Draining (or out of work): the items in flight run to their end, unless abandoned.
            if state.withLock({ $0.abandoned }) { group.cancelAll() }
        }
        heartbeat.cancel()
        let final = counters
        let abandoned = state.withLock { $0.abandoned }
        _ = try? await queue.renewLeases(worker: id, items: [], lease: options.lease, counters: final, state: .stopped)
        logger.info(abandoned ? "worker stopped (items handed back)" : "worker stopped", metadata: [
            "worker": "\(id)", "claimed": "\(final.claimed)", "succeeded": "\(final.succeeded)", "failed": "\(final.failed)",
            "retries": "\(final.retries)",
        ])
        return final
    }

    /// Renews the leases of the items in flight every third of the lease, and publishes the counters.
    func heartbeatLoop() async {
        let period = max(Duration.milliseconds(200), options.lease / 3)
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            if Task.isCancelled { return }
            let (held, counters, draining) = state.withLock { s in
                var c = s.counters
                c.inFlight = s.inFlight.count
                return (Array(s.inFlight), c, s.draining)
            }
            do {
                let kept = try await queue.renewLeases(worker: id, items: held, lease: options.lease, counters: counters,
                                                       state: draining ? .draining : .running)
                databaseAnswered()
                for key in held where !kept.contains(key) && state.withLock({ $0.inFlight.contains(key) }) {
                    logger.warning("lost the lease of an item (it was taken over or finished elsewhere); its result is kept only if it is the first",
                                   metadata: ["item": "\(key)"])
                }
            } catch {
                databaseFailed(error, doing: "renew leases")
            }
        }
    }

    // MARK: - One item

    func process(_ item: ClaimedItem) async {
        defer {
            state.withLock { _ = $0.inFlight.remove(item.key) }
            wakeup.signal()
        }
        let runner: TaskRunner
        do {
            runner = try self.runner(for: item)
        } catch {
            logger.error("the job cannot be run by this worker; marking it failed", metadata: ["job": "\(item.key.jobID)", "error": "\(error)"])
            try? await persist("fail the job") { [queue] in try await queue.failJob(id: item.key.jobID, error: "\(error)") }
            return
        }
        guard let recordText = item.record, let record = JobSubmission.record(fromJSON: recordText) else {
            await finish(item, ok: false, line: ResultLines.error(id: item.itemID, error: "the stored record is unreadable", task: runner.task))
            return
        }
        if item.isExhausted {
            let reason = "gave up after \(item.maxAttempts) attempts: " + (item.lastError.map { "the last failed with: \($0)" }
                ?? "the worker running it stopped each time before finishing (its lease expired)")
            await finish(item, ok: false, line: ResultLines.error(id: item.itemID, error: reason, task: runner.task))
            return
        }
        var imageData: Data?
        if let hash = item.imageSHA256 {
            do {
                imageData = try await persist("read the item's image") { [queue] in try await queue.images([hash])[hash] }
            } catch {
                return  // abandoned while the database was away; the lease brings the item back
            }
            if imageData == nil {
                await finish(item, ok: false, line: ResultLines.error(id: item.itemID, error: "the job's copy of image \(record.image ?? hash) is missing", task: runner.task))
                return
            }
        }
        let outcome = await runner.run(record, imageData: imageData)
        if state.withLock({ $0.abandoned }) { return }
        if outcome.transient, item.attempts < item.maxAttempts {
            let delay = backoff(attempt: item.attempts)
            logger.notice("item failed; will retry", metadata: ["item": "\(item.key)", "attempt": "\(item.attempts)",
                                                                 "retry_in_s": "\(delay.components.seconds)", "error": "\(outcome.error ?? "")"])
            do {
                try await persist("schedule a retry") { [queue, id] in
                    try await queue.retry(item.key, worker: id, error: outcome.error ?? "error", after: delay)
                }
                state.withLock { $0.counters.retries += 1 }
            } catch {}
            return
        }
        await finish(item, ok: outcome.ok, line: ResultLines.outcome(outcome, record: record, task: runner.task))
    }

    /// Writes the item's result, retrying while the database is away (the result is not lost to a restart of it).
    func finish(_ item: ClaimedItem, ok: Bool, line: JSONValue) async {
        let text = line.sortedText
        do {
            let written = try await persist("record a result") { [queue, id] in
                try await queue.complete(item.key, worker: id, ok: ok, line: text)
            }
            state.withLock { s in
                if written {
                    if ok { s.counters.succeeded += 1 } else { s.counters.failed += 1 }
                }
            }
            if !written {
                logger.info("the item already had its result (another worker finished it first)", metadata: ["item": "\(item.key)"])
            }
        } catch {
            logger.warning("result not recorded; the item returns to the queue when its lease expires",
                           metadata: ["item": "\(item.key)", "error": "\(error)"])
        }
    }

    func runner(for item: ClaimedItem) throws -> TaskRunner {
        if let runner = state.withLock({ $0.runners[item.key.jobID] }) { return runner }
        let spec = try JobSpec(json: try JSONValue.parse(item.spec))
        let runner = TaskRunner(task: try spec.makeTask(), analyzer: analyzer, options: spec.runOptions(), baseParameters: baseParameters)
        state.withLock { s in
            if s.runners.count > 64 { s.runners.removeAll() }
            s.runners[item.key.jobID] = runner
        }
        return runner
    }

    func backoff(attempt: Int) -> Duration {
        let base = Double(options.retryBase.components.seconds) + Double(options.retryBase.components.attoseconds) / 1e18
        let cap = Double(options.retryCap.components.seconds)
        let seconds = min(cap, base * pow(2, Double(max(0, attempt - 1)))) * Double.random(in: 0.8...1.2)
        return .milliseconds(Int64(seconds * 1000))
    }

    // MARK: - Database trouble

    /// Runs a database call until it succeeds; waits out an unreachable database with backoff (0.5 s doubling to 5 s).
    /// Gives up (rethrows) only when the worker is abandoned or the error is not about reaching the database.
    func persist<T: Sendable>(_ what: String, _ call: @Sendable () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(500)
        while true {
            do {
                let value = try await call()
                databaseAnswered()
                return value
            } catch let error as StoreError {
                guard case .unavailable = error, !state.withLock({ $0.abandoned }) else { throw error }
                databaseFailed(error, doing: what)
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    func databaseFailed(_ error: any Error, doing what: String) {
        let first = state.withLock { s -> Bool in
            defer { s.databaseDown = true }
            return !s.databaseDown
        }
        if first {
            logger.warning("the database is not answering; retrying until it does", metadata: ["while": "\(what)", "error": "\(error)"])
        } else {
            logger.debug("database still away", metadata: ["while": "\(what)"])
        }
    }

    func databaseAnswered() {
        let wasDown = state.withLock { s -> Bool in
            defer { s.databaseDown = false }
            return s.databaseDown
        }
        if wasDown { logger.notice("the database answers again", metadata: ["worker": "\(id)"]) }
    }
}

/// Wakes the worker loop early: an item finished (room for a new claim), or a drain began.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one came since the last wait), or after `limit`.
    func wait(upTo limit: Duration) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: limit)
            if !Task.isCancelled { signal() }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.pending {
                    s.pending = false
                    return true
                }
                s.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
    }
}
