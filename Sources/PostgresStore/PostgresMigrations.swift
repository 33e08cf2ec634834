import Foundation
import PostgresNIO
import Store

/// The PostgreSQL schema's history: numbered migrations, applied in order, each in its own transaction, recorded in
/// `postlens_schema_migrations`. Never edit a shipped migration: add one.
///
/// Several processes start against one database at once (a server and three workers): each takes the advisory lock
/// `lockKey` for the whole run, so exactly one applies the pending migrations while the others wait and then find
/// nothing to do. A database migrated by a newer postlens (a version this binary does not know) is refused, so an
/// old worker never writes rows a newer schema does not expect.
public enum PostgresMigrations {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        /// Statements, run one by one.
        public let statements: [String]
    }

    /// `pg_advisory_lock` key ("PLNS" in ASCII).
    static let lockKey: Int64 = 0x504C_4E53

    public static let all: [Migration] = [
        Migration(version: 1, name: "conversations-messages-images", statements: [
            """
            CREATE TABLE conversation (
                id text PRIMARY KEY,
                title text NOT NULL,
                created_at bigint NOT NULL,
                updated_at bigint NOT NULL,
                parameters text,
                created_seq bigserial
            )
            """,
            "CREATE INDEX conversation_updated ON conversation (updated_at DESC, created_seq DESC)",
            """
            CREATE TABLE message (
                id text PRIMARY KEY,
                conversation_id text NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
                position int NOT NULL,
                role text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                content text NOT NULL,
                created_at bigint NOT NULL,
                stats text,
                UNIQUE (conversation_id, position)
            )
            """,
            """
            CREATE TABLE image (
                sha256 text PRIMARY KEY,
                mime_type text NOT NULL,
                byte_count int NOT NULL,
                data bytea NOT NULL,
                created_at bigint NOT NULL
            )
            """,
            """
            CREATE TABLE message_image (
                message_id text NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                position int NOT NULL,
                sha256 text NOT NULL REFERENCES image(sha256),
                PRIMARY KEY (message_id, position)
            )
            """,
            "CREATE INDEX message_image_sha256 ON message_image (sha256)",
        ]),
        Migration(version: 2, name: "jobs-items-results-workers", statements: [
            """
            CREATE TABLE job (
                id text PRIMARY KEY,
                created_seq bigserial,
                task text NOT NULL,
                spec text NOT NULL,
                state text NOT NULL CHECK (state IN ('submitting', 'queued', 'running', 'completed', 'cancelled', 'failed')),
                source text NOT NULL,
                total int NOT NULL,
                done int NOT NULL DEFAULT 0,
                failed int NOT NULL DEFAULT 0,
                max_attempts int NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                started_at timestamptz,
                finished_at timestamptz,
                error text,
                summary text
            )
            """,
            "CREATE INDEX job_open ON job (created_seq) WHERE state IN ('queued', 'running')",
            """
            CREATE TABLE job_item (
                job_id text NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                seq int NOT NULL,
                item_id text NOT NULL,
                record text,
                image_sha256 text,
                state text NOT NULL CHECK (state IN ('queued', 'running', 'done')),
                attempts int NOT NULL DEFAULT 0,
                available_at timestamptz NOT NULL DEFAULT now(),
                worker_id text,
                lease_until timestamptz,
                last_error text,
                PRIMARY KEY (job_id, seq)
            )
            """,
            // The claim query reads only these two small slices of a large table.
            "CREATE INDEX job_item_queued ON job_item (job_id, seq) WHERE state = 'queued'",
            "CREATE INDEX job_item_running ON job_item (lease_until) WHERE state = 'running'",
            """
            CREATE TABLE job_result (
                job_id text NOT NULL,
                seq int NOT NULL,
                item_id text NOT NULL,
                ok boolean NOT NULL,
                line text NOT NULL,
                worker_id text,
                finished_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (job_id, seq),
                FOREIGN KEY (job_id, seq) REFERENCES job_item (job_id, seq) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX job_result_finished ON job_result (job_id, finished_at)",
            "CREATE TABLE job_image (sha256 text PRIMARY KEY, data bytea NOT NULL)",
            """
            CREATE TABLE job_worker (
                id text PRIMARY KEY,
                host text NOT NULL,
                pid int NOT NULL,
                concurrency int NOT NULL,
                state text NOT NULL,
                claimed bigint NOT NULL DEFAULT 0,
                succeeded bigint NOT NULL DEFAULT 0,
                failed bigint NOT NULL DEFAULT 0,
                retries bigint NOT NULL DEFAULT 0,
                in_flight int NOT NULL DEFAULT 0,
                lease_expiries bigint NOT NULL DEFAULT 0,
                started_at timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]),
    ]

    /// The newest version this binary knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }
}

extension PostgresDatabase {
    /// Applies the pending migrations; returns the versions applied now (empty when the schema was current).
    @discardableResult
    public func migrate() async throws -> [Int] {
        let logger = logger
        return try await withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(PostgresMigrations.lockKey))", logger: logger)
            do {
                let applied = try await Self.applyPending(connection, logger: logger)
                try await connection.query("SELECT pg_advisory_unlock(\(PostgresMigrations.lockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(PostgresMigrations.lockKey))", logger: logger)
                throw error
            }
        }
    }

    /// The versions recorded in the database, in order.
    public func appliedVersions() async throws -> [Int] {
        let logger = logger
        return try await withConnection { connection in try await Self.versions(connection, logger: logger) }
    }

    private static func versions(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS postlens_schema_migrations (
                version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger)
        return try await connection.query("SELECT version FROM postlens_schema_migrations ORDER BY version", logger: logger)
            .all().map { try $0.value("version", as: Int.self) }
    }

    private static func applyPending(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        let done = try await versions(connection, logger: logger)
        if let newest = done.last, newest > PostgresMigrations.latestVersion {
            throw StoreError.invalid("the database schema is at version \(newest), newer than this postlens knows "
                + "(\(PostgresMigrations.latestVersion)); upgrade postlens on this machine")
        }
        var applied: [Int] = []
        for migration in PostgresMigrations.all where !done.contains(migration.version) {
            try await connection.query("BEGIN", logger: logger)
            for statement in migration.statements {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            try await connection.query("""
                INSERT INTO postlens_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))
                """, logger: logger)
            try await connection.query("COMMIT", logger: logger)
            logger.info("database migrated", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return applied
    }
}
