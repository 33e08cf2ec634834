import ArgumentParser
import Foundation
import Logging
import PostgresStore
import Store

/// `--database URL`: where jobs (and, for `serve`, conversations) are kept.
///
/// - `postgres://USER:PASSWORD@HOST:PORT/DATABASE` — shared by any number of servers and workers on any machines;
///   the schema is created and migrated on first use.
/// - `sqlite:PATH` (or a path ending in `.sqlite`/`.db`) — one machine: jobs and workers on the same computer.
/// Default: `$POSTLENS_DATABASE_URL`.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database"),
            help: "postgres://USER:PASSWORD@HOST:PORT/DATABASE (or sqlite:PATH for one machine). Default: $POSTLENS_DATABASE_URL.")
    var database: String?

    /// The URL given, or the environment's; nil when neither.
    var url: String? {
        if let database, !database.isEmpty { return database }
        if let value = ProcessInfo.processInfo.environment["POSTLENS_DATABASE_URL"], !value.isEmpty { return value }
        return nil
    }

    /// The URL, or an error that says how to give one.
    func requiredURL() throws -> String {
        guard let url else {
            throw CLIError("error: no database: pass --database postgres://USER:PASSWORD@HOST:PORT/DATABASE or set POSTLENS_DATABASE_URL")
        }
        return url
    }
}

/// An opened database: its stores, and how to close it.
struct OpenedDatabase {
    var jobs: any JobQueue
    var conversations: any ConversationStore
    /// `postgresql` or `sqlite`, and where (password hidden).
    var description: String
    /// Shared by several processes on several machines (PostgreSQL).
    var isShared: Bool
    var close: @Sendable () -> Void

    /// Opens a `--database` value: PostgreSQL (migrated on open, waiting up to `wait` for a server still starting) or
    /// a SQLite file.
    static func open(_ value: String, maximumConnections: Int = 8, wait: Duration = .seconds(30), logger: Logger) async throws -> OpenedDatabase {
        if let path = sqlitePath(value) {
            let store = try SQLiteConversationStore(path: path)
            let jobs = try SQLiteJobQueue(writer: store.writer)
            return OpenedDatabase(jobs: jobs, conversations: store, description: "sqlite \(path)", isShared: false, close: {})
        }
        let url = try DatabaseURL(value)
        let database = try await PostgresDatabase.open(url, maximumConnections: maximumConnections, wait: wait, logger: logger)
        return OpenedDatabase(jobs: database.jobs, conversations: database.conversations, description: "postgresql \(url)",
                              isShared: true, close: { database.close() })
    }

    /// `sqlite:PATH`, `sqlite://PATH`, or a plain path ending in `.sqlite`/`.sqlite3`/`.db`.
    static func sqlitePath(_ value: String) -> String? {
        for prefix in ["sqlite://", "sqlite:"] where value.hasPrefix(prefix) {
            return (String(value.dropFirst(prefix.count)) as NSString).expandingTildeInPath
        }
        if !value.contains("://"), ["sqlite", "sqlite3", "db"].contains((value as NSString).pathExtension.lowercased()) {
            return (value as NSString).expandingTildeInPath
        }
        return nil
    }
}

/// A logger for the command line: messages at `level` and above on stderr.
func commandLogger(_ label: String, level: Logger.Level = .notice) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}
