import Foundation
import GRDB

/// A batch job's state in SQLite (WAL mode): the job's identity and each finished item's output line,
/// written as each item finishes, so an interrupted run resumes without redoing finished items.
public final class JobStore: Sendable {
    public let path: String
    let pool: DatabasePool

    public struct StoredItem: Sendable, Equatable {
        public var seq: Int
        public var id: String
        public var ok: Bool
        /// The item's output object, serialized.
        public var line: String
    }

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)  // DatabasePool is always WAL
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS job (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS items (
                    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ok INTEGER NOT NULL, line TEXT NOT NULL, finished_at REAL NOT NULL);
                """)
        }
    }

    /// The journal mode (`wal`).
    public func journalMode() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    /// Starts or resumes a job. A fresh start clears earlier items; resuming requires the same job
    /// identity (task, version, input), else it throws rather than mixing results.
    public func begin(job: [String: String], resume: Bool) throws {
        try pool.write { db in
            if resume {
                let rows = try Row.fetchAll(db, sql: "SELECT key, value FROM job")
                var existing: [String: String] = [:]
                for row in rows {
                    let key: String = row["key"], value: String = row["value"]
                    existing[key] = value
                }
                if !existing.isEmpty {
                    for (key, value) in job where existing[key] != value {
                        throw TaskError("cannot resume: the job state at \(path) was for \(key) \(existing[key] ?? "(none)"), not \(value); run without --resume to start over")
                    }
                    return
                }
            }
            try db.execute(sql: "DELETE FROM items")
            try db.execute(sql: "DELETE FROM job")
            for (key, value) in job {
                try db.execute(sql: "INSERT INTO job (key, value) VALUES (?, ?)", arguments: [key, value])
            }
        }
    }

    /// Finished items: seq → id.
    public func finished() throws -> [Int: String] {
        try pool.read { db in
            var out: [Int: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT seq, id FROM items") {
                let seq: Int = row["seq"], id: String = row["id"]
                out[seq] = id
            }
            return out
        }
    }

    public func finishedCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM items") ?? 0 }
    }

    public func record(seq: Int, id: String, ok: Bool, line: String) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO items (seq, id, ok, line, finished_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [seq, id, ok ? 1 : 0, line, Date().timeIntervalSince1970])
        }
    }

    /// Every finished item in input order.
    public func items() throws -> [StoredItem] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, id, ok, line FROM items ORDER BY seq").map { row in
                StoredItem(seq: row["seq"], id: row["id"], ok: (row["ok"] as Int) != 0, line: row["line"])
            }
        }
    }
}
