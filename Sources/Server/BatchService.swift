import Analysis
import Foundation
import Logging
import Qwen3VL
import Store
import Synchronization

/// The server's batch jobs: the `JobQueue` they are kept in, and the server's own worker that runs their items through
/// its engine (the same `QueueWorker` as `postlens worker`), `configuration.batchConcurrency` items at a time beside chat,
/// each within the chat API's admission limits (a place among `--max-queue`, room in the KV-cache budget).
///
/// - `onDemand` (SQLite, one server): the worker starts when a job is submitted (and at start-up, for jobs an
///   earlier run left unfinished) and stops when no job has work left, so an idle server does not poll.
/// - `continuous` (PostgreSQL, shared): the worker polls, so jobs submitted elsewhere (`postlens jobs submit`, another
///   server) are run here too; any number of servers and `postlens worker`s share them.
/// - `off` (`--batch-concurrency 0`): this server only stores and reports jobs; workers run them.
public final class BatchService: Sendable {
    public enum Mode: String, Sendable { case onDemand = "on-demand", continuous, off }

    public let queue: any JobQueue
    public let mode: Mode
    let host: ModelHost
    /// The server's admission gate (`--max-queue`), shared with chat and analyze: each batch item waits for a place in
    /// it, and for KV-cache room, before it reaches the engine (`EngineAnalyzer` with the gate as its admission control), where a chat request would get 429/503.
    let gate: AdmissionGate
    let concurrency: Int
    /// The image ceiling every item is held to, whoever submitted its job (`--max-image-tokens` in pixels).
    let maxPixels: Int
    let logger: Logger

    private struct State {
        var worker: QueueWorker?
        var runner: Task<Void, Never>?
        /// A submission came while the worker was deciding to stop: run again.
        var wokenWhileRunning = false
        var stopped = false
    }
    private let state = Mutex(State())

    public init(queue: any JobQueue, host: ModelHost, configuration: ServerConfiguration, mode: Mode,
                logger: Logger = Logger(label: "postlens.batches")) {
        self.queue = queue
        self.host = host
        gate = AdmissionGate(limit: configuration.maxQueue)
        maxPixels = ImageTokenBudget.pixels(configuration.maxImageTokens)
        let concurrency = max(0, configuration.batchConcurrency)
        self.concurrency = concurrency
        self.mode = concurrency == 0 ? .off : mode
        self.logger = logger
        // A model switch: stop claiming and let the items in flight finish on the old engine (so it can be freed),
        // then work on with the new one. Items of one job may so come from two models, as they may from workers
        // serving different ones.
        host.observe { [weak self] event in
            guard let self else { return }
            switch event {
            case .switching: Task { await self.pause() }
            case .ready: self.wake()
            }
        }
    }

    /// An in-memory SQLite queue (router tests, `--no-history`).
    static func inMemory(host: ModelHost, configuration: ServerConfiguration, logger: Logger) -> BatchService {
        do {
            return BatchService(queue: try SQLiteJobQueue.inMemory(), host: host, configuration: configuration, mode: .onDemand, logger: logger)
        } catch {
            fatalError("an in-memory SQLite job queue could not be created: \(error)")  // only a broken migration gets here
        }
    }

    /// Most unfinished jobs this server accepted through `POST /v1/batches` at once; more get 429 `too_many_batches`.
    /// It bounds the work one server's clients can queue (each job holds at most `maxBatchRecords` records).
    public static let maxOpenSubmissions = 32
    /// Jobs this server accepted that were unfinished when last looked at.
    private let submitted = Mutex<[String]>([])

    /// Throws 429 when `maxOpenSubmissions` jobs accepted here are still unfinished (their states are read from the
    /// queue, so jobs finished by workers elsewhere make room too).
    func checkRoomForSubmission() async throws {
        let ids = submitted.withLock { $0 }
        guard ids.count >= Self.maxOpenSubmissions else { return }
        var finished = Set<String>()
        for id in ids {
            switch try? await queue.job(id: id) {
            case let info? where info.state.isFinal: finished.insert(id)
            case nil: finished.insert(id)  // gone from the database (or unreadable): it holds no room
            default: break
            }
        }
        let open = submitted.withLock { list -> Int in
            list.removeAll { finished.contains($0) }
            return list.count
        }
        guard open < Self.maxOpenSubmissions else {
            throw APIError(status: .tooManyRequests,
                           message: "\(Self.maxOpenSubmissions) batch jobs submitted to this server are unfinished; wait for one to finish or cancel one",
                           type: "rate_limit_error", code: "too_many_batches")
        }
    }

    /// Counts a job accepted through this server (see `checkRoomForSubmission`).
    func accepted(_ job: JobInfo) {
        guard !job.state.isFinal else { return }
        submitted.withLock { $0.append(job.id) }
    }

    /// The worker running now, for `/metrics`.
    var worker: QueueWorker? { state.withLock { $0.worker } }

    /// Begins working once the model is ready: continuous polling, or (on demand) one pass over unfinished jobs.
    public func start() {
        guard mode != .off else { return }
        Task { [self] in
            while case .loading = host.current {
                try? await Task.sleep(for: .milliseconds(200))
            }
            guard case .ready = host.current else { return }
            wake()
        }
    }

    /// A job was submitted: make sure a worker runs (on demand), or let the polling worker look now.
    func wake() {
        guard mode != .off, case .ready(let engine) = host.current else { return }
        let started: Bool = state.withLock { s in
            guard !s.stopped else { return false }
            if s.runner != nil {
                s.wokenWhileRunning = true
                return false
            }
            s.wokenWhileRunning = false
            var options = WorkerOptions()
            options.concurrency = concurrency
            options.exitWhenIdle = mode == .onDemand
            options.pollInterval = .milliseconds(500)
            let worker = QueueWorker(queue: queue, analyzer: EngineAnalyzer(engine: engine, maxPixels: maxPixels, admission: gate, shielded: true),
                                     baseParameters: engine.defaultParameters, options: options, logger: logger)
            s.worker = worker
            s.runner = Task { [self] in
                do { try await worker.run() } catch { logger.error("batch worker stopped", metadata: ["error": "\(error)"]) }
                finished()
            }
            return true
        }
        if !started, mode == .continuous { state.withLock { $0.worker }?.poke() }
    }

    private func finished() {
        let again = state.withLock { s -> Bool in
            s.runner = nil
            s.worker = nil
            return s.wokenWhileRunning && !s.stopped
        }
        if again { wake() }
    }

    /// A model switch started: the worker claims nothing more and returns once its items in flight are done, which
    /// drops its hold on the old engine. `wake()` starts a new worker when the new model is ready.
    func pause() async {
        let (worker, runner) = state.withLock { ($0.worker, $0.runner) }
        worker?.drain()
        await runner?.value
    }

    /// Server shutdown: items in flight go back to the queue at once (another server or worker takes them).
    public func stop() async {
        let (worker, runner) = state.withLock { s in
            s.stopped = true
            return (s.worker, s.runner)
        }
        await worker?.abandon()
        await runner?.value
    }
}
