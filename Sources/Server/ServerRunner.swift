import Engine
import Foundation
import Hummingbird
import Kernels
import Logging
import Qwen3VL
import ServiceLifecycle
import Store

/// Conversations and batch jobs in a database other processes share (`serve --database`).
public struct SharedDatabase: Sendable {
    public var conversations: any ConversationStore
    public var jobs: any JobQueue
    /// Several servers and workers use it (PostgreSQL): the server's batch worker polls for jobs submitted elsewhere.
    public var isShared: Bool
    /// For the log (password hidden).
    public var description: String

    public init(conversations: any ConversationStore, jobs: any JobQueue, isShared: Bool, description: String) {
        self.conversations = conversations
        self.jobs = jobs
        self.isShared = isShared
        self.description = description
    }
}

/// A model `serve` offers (`--model`, then each `--offer`): a folder on disk already, or one still to be downloaded.
/// A download runs while the server listens; `fetch` reports its progress to the host (`ModelHost.downloading`), which
/// `/health` and the page show while it is the served model.
public struct ModelSource: Sendable {
    public var id: String
    public var folder: URL?
    /// Downloads the model and returns its folder (`served`: it is the model the server starts with).
    public var fetch: (@Sendable (_ host: ModelHost, _ served: Bool) async throws -> URL)?

    public init(id: String, folder: URL) {
        self.id = id
        self.folder = folder
    }

    public init(id: String, fetch: @escaping @Sendable (_ host: ModelHost, _ served: Bool) async throws -> URL) {
        self.id = id
        self.fetch = fetch
    }
}

/// Runs `postlens serve`: listens at once; downloads (when needed) and loads the model meanwhile; serves until stopped.
public enum ServerRunner {
    public static func isValidLogLevel(_ name: String) -> Bool { Logger.Level(rawValue: name) != nil }

    /// `models`: the model served first, then those the operator may switch to (`--offer`); the first is served as
    /// `configuration.modelID`. `database`: conversations and batch jobs in a database shared with other servers and
    /// workers (`--database`); without it they live in the SQLite file `historyDatabase` (memory only when nil).
    public static func run(configuration: ServerConfiguration, models: [ModelSource], contextLimit: Int?, format: WeightFormat = .q8,
                           historyDatabase: String?, logLevel: String, database: SharedDatabase? = nil) async throws {
        var logger = Logger(label: "postlens.server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        // config.json and the chat template of every model on disk are read now (no weights), so /v1/models and /health
        // say what is served while it loads, and a folder that is no Qwen3-VL model fails before the listener starts.
        var choices: [ModelChoice] = []
        for source in models {
            guard !choices.contains(where: { $0.id == source.id }) else { throw ServerSetupError("the model id '\(source.id)' is offered twice") }
            choices.append(ModelChoice(id: source.id, folder: source.folder, description: try source.folder.map(ModelDescription.read(from:))))
        }
        let budget = configuration.kvCacheBudgetBytes
        let host = ModelHost(choices: choices, loader: { choice in
            guard let folder = choice.folder else { throw ServerSetupError("'\(choice.id)' has not been downloaded") }
            return try InferenceEngine(directory: folder, contextLimit: contextLimit, format: format, kvCacheBudgetBytes: budget)
        })
        let loadLogger = logger
        let startLoading: @Sendable () -> Void = {
            host.startLoading(logger: loadLogger) { error in
                loadLogger.critical("the model failed to load; stopping", metadata: ["model": "\(configuration.modelID)", "error": "\(error)"])
                exit(1)
            }
        }
        if models[0].folder != nil { startLoading() }
        let downloads = models.enumerated().compactMap { index, source in source.fetch.map { (index, source.id, $0) } }
        if !downloads.isEmpty {
            // The served model first (its progress on /health), then the offered ones, one after another.
            Task {
                for (index, id, fetch) in downloads {
                    do {
                        let folder = try await fetch(host, index == 0)
                        host.located(index, folder: folder, description: try ModelDescription.read(from: folder))
                        loadLogger.info("model downloaded", metadata: ["model": "\(id)", "folder": "\(folder.path)"])
                        if index == 0 { startLoading() }
                    } catch {
                        loadLogger.critical("the model could not be fetched; stopping", metadata: ["model": "\(id)", "error": "\(error)"])
                        exit(1)
                    }
                }
            }
        }
        logger.info("listening", metadata: [
            "address": "http://\(configuration.host):\(configuration.port)", "model": "\(configuration.modelID)",
            "auth": "\(configuration.apiKeys.isEmpty ? "off" : "bearer")", "max_queue": "\(configuration.maxQueue)",
            "family": "\(choices[0].description?.name ?? "(downloading)")", "thinking": "\(choices[0].description?.thinking ?? false)",
            "offered": "\(choices.map(\.id).joined(separator: ", "))",
        ])
        // Conversations of the web page and batch jobs: a shared database (`--database`), or a SQLite file (WAL), or
        // memory only with `--no-history`.
        let store: any ConversationStore
        let batches: BatchService
        var batchLogger = logger
        batchLogger[metadataKey: "component"] = "batches"
        if let database {
            store = database.conversations
            batches = BatchService(queue: database.jobs, host: host, configuration: configuration,
                                   mode: database.isShared ? .continuous : .onDemand, logger: batchLogger)
        } else {
            let sqlite = try historyDatabase.map { try SQLiteConversationStore(path: $0) } ?? SQLiteConversationStore.inMemory()
            store = sqlite
            batches = BatchService(queue: try SQLiteJobQueue(writer: sqlite.writer), host: host, configuration: configuration,
                                   mode: .onDemand, logger: batchLogger)
        }
        logger.info("storage", metadata: ["database": "\(database?.description ?? historyDatabase.map { "sqlite \($0)" } ?? "memory")",
                                          "batch_worker": "\(batches.mode.rawValue)"])
        batches.start()
        let drain = ShutdownDrain()
        let app = buildApplication(configuration: configuration, host: host, store: store, batches: batches, drain: drain, logger: logger)
        try await runUntilSignalled(app, drain: drain, configuration: configuration, logger: logger)
        await batches.stop()
        switch host.current {
        case .loading:
            // The loading thread is still reading weights: leave without running exit handlers under its feet
            // (OpenBLAS frees its buffers at exit).
            logger.info("stopped while the model was still loading")
            fflush(nil)
            _exit(0)
        case .ready(let engine):
            // Cancelled generations leave the scheduler after its current step: let it get there before exit.
            await waitUntilIdle(engine, upTo: .seconds(5))
        case .failed:
            break
        }
        logger.info("stopped")
    }

    private static func waitUntilIdle(_ engine: any ChatEngine, upTo limit: Duration) async {
        let clock = ContinuousClock(), deadline = clock.now + limit
        while let statistics = engine.engineStatistics, statistics.active + statistics.waiting > 0, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: the listening socket closes at once, requests in
    /// flight (streams included) run to their end, idle keep-alive connections close. Streams still running after
    /// `shutdownGracePeriod` are drained: the engine drops their generation and the client gets an in-band
    /// `server_shutting_down` error event and `[DONE]`. Whatever still runs 5 s later is cancelled.
    static func runUntilSignalled(_ app: some ApplicationProtocol, drain: ShutdownDrain, configuration: ServerConfiguration,
                                  logger: Logger) async throws {
        var grace = configuration.shutdownGracePeriod
        // For tests and operators: the grace period in seconds.
        if let value = ProcessInfo.processInfo.environment["POSTLENS_SHUTDOWN_GRACE_S"].flatMap(Double.init), value >= 0 {
            grace = .milliseconds(Int64(value * 1000))
        }
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: app),
                // Last, so that it hears the signal first (services are shut down in reverse order).
                .init(service: ShutdownNotice(logger: logger, drain: drain, grace: grace), successTerminationBehavior: .ignore,
                      failureTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = grace + .seconds(5)
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
    }
}

/// Hears the shutdown signal first: logs it, and drains the streams still running once the grace period is over.
/// It returns at once (the group then shuts the application down), leaving the drain to a timer task.
private struct ShutdownNotice: Service {
    let logger: Logger
    let drain: ShutdownDrain
    let grace: Duration

    func run() async throws {
        try await gracefulShutdown()
        logger.info("shutting down: no new connections; waiting for requests in flight",
                    metadata: ["grace_s": "\(grace.components.seconds)"])
        let (drain, logger, grace) = (drain, logger, grace)
        Task {
            try await Task.sleep(for: grace)
            logger.info("grace period over; ending the streams still running")
            drain.drainAll()
        }
    }
}

/// A `serve` setup that cannot run (said before the listener starts).
public struct ServerSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = message }
}
