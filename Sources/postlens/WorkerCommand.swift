import Analysis
import ArgumentParser
import Dispatch
import Engine
import Foundation
import Logging
import Store
import Synchronization

/// `postlens worker`: runs the items of the database's jobs through the model, on as many machines as wanted.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run batch job items from the database through the model (start one per machine, any number).",
        discussion: """
        Claims a few items at a time under a lease it renews while they run, feeds them to the engine together \
        (continuous batching), writes each result once, retries transient failures with backoff. SIGTERM/SIGINT: \
        finish the items in flight, then exit; a second signal hands them back at once. A worker killed outright \
        loses nothing: its items return to the queue when their lease expires. See docs/scaling.md.
        """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Items in flight at once (decoded together by the engine).")
    var concurrency = 4

    @Option(name: .customLong("lease-seconds"), help: "How long a claimed item stays this worker's without renewal (renewed every third of it).")
    var leaseSeconds = 60.0

    @Flag(name: .customLong("exit-when-idle"), help: "Exit when no open job has items left to run (none waiting, none leased).")
    var exitWhenIdle = false

    @Option(name: .customLong("poll-seconds"), help: "How often an idle worker looks for work.")
    var pollSeconds = 1.0

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be 1...64") }
        guard leaseSeconds >= 1 else { throw ValidationError("--lease-seconds must be at least 1") }
        guard pollSeconds > 0 else { throw ValidationError("--poll-seconds must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        let logger = commandLogger("postlens.worker", level: Logger.Level(rawValue: logLevel) ?? .info)
        let opened: OpenedDatabase
        let engine: InferenceEngine
        do {
            opened = try await OpenedDatabase.open(try database.requiredURL(), maximumConnections: 4, logger: logger)
            let folder = try await modelOptions.prepare()
            let start = Date()
            engine = try InferenceEngine(directory: folder, format: modelOptions.weightFormat)
            logger.info("model ready", metadata: ["model": "\(folder.lastPathComponent)", "load_s": "\(String(format: "%.1f", Date().timeIntervalSince(start)))",
                                                  "database": "\(opened.description)"])
        } catch {
            printError("\(error)".hasPrefix("error:") ? "\(error)" : "error: \(error)")
            throw ExitCode.failure
        }
        defer { opened.close() }

        var options = WorkerOptions()
        options.concurrency = concurrency
        options.lease = .milliseconds(Int64(leaseSeconds * 1000))
        options.pollInterval = .milliseconds(Int64(pollSeconds * 1000))
        options.exitWhenIdle = exitWhenIdle
        let worker = QueueWorker(queue: opened.jobs, analyzer: EngineAnalyzer(engine: engine),
                                 baseParameters: GenerationParameters.defaults(for: engine.model), options: options, logger: logger)
        let signals = StopSignals { first in
            if first {
                logger.notice("stopping: finishing the items in flight (signal again to hand them back now)", metadata: ["worker": "\(worker.id)"])
                worker.drain()
            } else {
                Task {
                    await worker.abandon()
                    Foundation.exit(130)
                }
            }
        }
        defer { signals.cancel() }
        do {
            try await worker.run()
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}

/// SIGTERM and SIGINT: the handler hears `true` the first time, `false` after.
final class StopSignals: Sendable {
    /// Dispatch sources are thread-safe; the mutex only makes that visible to the compiler.
    private let sources: Mutex<[any DispatchSourceSignal]>

    init(_ handler: @escaping @Sendable (_ first: Bool) -> Void) {
        let count = ManagedCounter()
        sources = Mutex([SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(count.increment() == 1) }
            source.resume()
            return source
        })
    }

    func cancel() { sources.withLock { for source in $0 { source.cancel() } } }
}

/// A thread-safe counter.
final class ManagedCounter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}
