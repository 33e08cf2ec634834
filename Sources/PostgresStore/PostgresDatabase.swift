import Foundation
import Logging
import PostgresNIO
import Store
import Synchronization

/// One PostgreSQL database shared by servers and workers: a connection pool (postgres-nio's `PostgresClient`), the
/// schema migrations, and the two stores on top (`conversations`, `jobs`).
///
/// Every call runs under a time limit, so a database that went away (restarted, network cut) is an error after
/// `operationTimeout` instead of a hang; the pool reconnects by itself once the server answers again, so callers
/// simply try again (workers do, with backoff).
public final class PostgresDatabase: Sendable {
    public let url: DatabaseURL
    let client: PostgresClient
    let logger: Logger
    let operationTimeout: Duration
    private let runner: Task<Void, Never>

    public var conversations: PostgresConversationStore { PostgresConversationStore(database: self) }
    public var jobs: PostgresJobQueue { PostgresJobQueue(database: self) }

    /// Starts the pool. Nothing is connected yet: `migrate()` (or the first call) connects.
    public init(url: DatabaseURL, maximumConnections: Int = 8, operationTimeout: Duration = .seconds(15),
                logger: Logger = Logger(label: "postlens.postgres")) {
        self.url = url
        self.logger = logger
        self.operationTimeout = operationTimeout
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)  // the pool's own chatter only when something is wrong
        let client = PostgresClient(configuration: url.clientConfiguration(maximumConnections: maximumConnections), backgroundLogger: quiet)
        self.client = client
        runner = Task { await client.run() }
    }

    /// Connects (waiting up to `wait` for a server that is still starting) and brings the schema to the newest
    /// version. Several processes may do this at once: an advisory lock lets one migrate while the others wait.
    public static func open(_ url: DatabaseURL, maximumConnections: Int = 8, wait: Duration = .seconds(30),
                            logger: Logger = Logger(label: "postlens.postgres")) async throws -> PostgresDatabase {
        let clock = ContinuousClock(), deadline = clock.now + wait
        while true {
            do {
                try await probe(url, logger: logger)
                break
            } catch let error as StoreError {
                guard case .unavailable = error, clock.now < deadline else { throw error }
                logger.info("waiting for the database", metadata: ["database": "\(url)", "error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
        let database = PostgresDatabase(url: url, maximumConnections: maximumConnections, logger: logger)
        do {
            try await database.migrate()
        } catch {
            database.close()
            throw error
        }
        return database
    }

    /// Connects once outside the pool, so that a wrong address, password or database name is reported at once with
    /// the server's own reason (the pool would keep retrying until the time limit).
    static func probe(_ url: DatabaseURL, logger: Logger) async throws {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0, logger: logger)
        } catch {
            throw storeError(error, url: url)
        }
        try? await connection.close().get()
    }

    /// Stops the pool (its connections close).
    public func close() { runner.cancel() }

    deinit { runner.cancel() }

    // MARK: - Running statements

    /// Runs one SQL statement given as text, for administration (creating a test database) and tools. The text is
    /// sent as it is: never build it from user input.
    public func execute(_ sql: String) async throws {
        let logger = logger
        try await withConnection { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
    }

    /// The first column of the first row of a query as an integer (`SELECT count(*) …`), for tests and tools.
    public func integer(_ sql: String) async throws -> Int? {
        let logger = logger
        return try await withConnection { connection in
            guard let row = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).all().first, let cell = row.first else {
                return nil
            }
            return try cell.decode(Int?.self)
        }
    }

    /// Runs `body` on one pooled connection under the time limit, turning driver errors into `StoreError`.
    ///
    /// The limit does not wait for `body` to notice it: after a server restart a statement can stay unanswered on a
    /// connection the driver still thinks open, and such a call ignores cancellation. So the caller gets its error at
    /// the limit, and the connection is closed under the stuck call (which fails it, and the pool opens a new one).
    @discardableResult
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = client, limit = operationTimeout, url = url
        let race = Race<T>()
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    race.start(continuation)
                    let work = Task {
                        do {
                            let value = try await client.withConnection { connection in
                                race.hold(connection)
                                defer { race.hold(nil) }
                                return try await body(connection)
                            }
                            race.finish(.success(value))
                        } catch {
                            race.finish(.failure(error))
                        }
                    }
                    let timer = Task {
                        try await Task.sleep(for: limit)
                        let message = "the database \(url) did not answer within \(limit.components.seconds) s; "
                            + "check that PostgreSQL is running and reachable from this machine"
                        if race.finish(.failure(StoreError.unavailable(message))) {
                            work.cancel()
                            race.closeHeldConnection()
                        }
                    }
                    race.onFinish { timer.cancel() }
                }
            } onCancel: {
                race.finish(.failure(CancellationError()))
            }
        } catch let error as StoreError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw Self.storeError(error, url: url)
        }
    }

    /// `body` in one transaction (BEGIN … COMMIT, ROLLBACK on any error, which is rethrown as it was).
    @discardableResult
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = logger
        return try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return value
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Maps a driver error to a `StoreError` that says what to check.
    static func storeError(_ error: any Error, url: DatabaseURL) -> StoreError {
        guard let error = error as? PSQLError else {
            return .unavailable("the database \(url) failed: \(error)")
        }
        switch error.code {
        case .server:
            let message = error.serverInfo?[.message] ?? "error"
            let state = error.serverInfo?[.sqlState] ?? ""
            // 28xxx: authentication; 3D000: no such database; 57P0x: the server is shutting down or restarting.
            if state.hasPrefix("28") || state == "3D000" {
                return .unavailable("cannot open the database \(url): \(message); check the user, password and database name in --database")
            }
            if state.hasPrefix("57P") || state.hasPrefix("08") {
                return .unavailable("the database \(url) is restarting or unreachable (\(message)); try again in a moment")
            }
            let detail = error.serverInfo?[.detail].map { " (\($0))" } ?? ""
            return .invalid("the database refused a statement: \(message)\(detail) [SQLSTATE \(state)]")
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed, .queryCancelled:
            return .unavailable("cannot reach the database \(url) (\(reason(error))); check that PostgreSQL is running and reachable from this machine")
        case .sslUnsupported:
            return .unavailable("the database \(url) does not offer TLS; use ?sslmode=disable or prefer")
        default:
            return .unavailable("the database \(url) failed (\(reason(error)))")
        }
    }

    /// What went wrong, without the statement's text or values (the driver's own description hides everything; its
    /// reflection would show the statement's values, which may be users' data): the server's message, the error's
    /// code, and the network error under it (`connection refused`).
    static func reason(_ error: PSQLError) -> String {
        var parts: [String] = []
        if let message = error.serverInfo?[.message] { parts.append(message) }
        parts.append(error.code.description)
        var underlying = error.underlying
        while let inner = underlying as? PSQLError {
            if let message = inner.serverInfo?[.message] { parts.append(message) }
            underlying = inner.underlying
        }
        if let underlying { parts.append("\(underlying)") }
        return parts.joined(separator: ": ")
    }
}

/// One database call racing its time limit: whichever finishes first resumes the caller, once.
final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
        var connection: PostgresConnection?
        var onFinish: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { s -> Result<T, any Error>? in
            if let early = s.early { return early }
            s.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// Resumes the caller unless someone already did; true if this call did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (continuation, first, callback) = state.withLock { s -> (CheckedContinuation<T, any Error>?, Bool, (@Sendable () -> Void)?) in
            guard !s.done else { return (nil, false, nil) }
            s.done = true
            let c = s.continuation
            s.continuation = nil
            if c == nil { s.early = result }
            let callback = s.onFinish
            s.onFinish = nil
            return (c, true, callback)
        }
        continuation?.resume(with: result)
        callback?()
        return first
    }

    func onFinish(_ callback: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.done { return true }
            s.onFinish = callback
            return false
        }
        if now { callback() }
    }

    func hold(_ connection: PostgresConnection?) { state.withLock { $0.connection = connection } }

    func closeHeldConnection() {
        guard let connection = state.withLock({ $0.connection }) else { return }
        connection.close().whenComplete { _ in }
    }
}

extension PostgresRowSequence {
    /// Every row, each as random-access columns.
    func all() async throws -> [PostgresRandomAccessRow] {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in self { rows.append(row.makeRandomAccess()) }
        return rows
    }
}

extension PostgresRandomAccessRow {
    /// The column's value; a wrong type or a missing column is a programming error reported as a store error.
    func value<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard contains(column) else { throw StoreError.invalid("no column \(column) in the database's answer") }
        return try self[column].decode(T.self)
    }
}
