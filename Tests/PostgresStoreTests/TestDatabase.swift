import Foundation
import Logging
import PostgresStore
import Store
import Synchronization
import Testing

/// A value several test tasks update (a `Mutex` cannot be captured by an escaping closure; a class holding one can).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}

/// A fresh PostgreSQL database per test, made on the server named by `POSTLENS_TEST_DATABASE_URL` (scripts/test.sh
/// starts a throwaway cluster and sets it; scripts/test-postgres.sh does it by hand). Without the variable the
/// PostgreSQL tests are skipped, unless `POSTLENS_REQUIRE_POSTGRES=1` (CI), where `postgresIsThereWhenRequired` fails.
enum TestDatabase {
    static var baseURL: String? {
        ProcessInfo.processInfo.environment["POSTLENS_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var available: Bool { baseURL != nil }

    static var logger: Logger {
        var logger = Logger(label: "postlens.test.postgres")
        logger.logLevel = .warning
        return logger
    }

    /// Creates an empty database, runs `body` with it migrated, drops it afterwards.
    static func withFresh<T>(maximumConnections: Int = 8, _ body: (PostgresDatabase) async throws -> T) async throws -> T {
        let (database, cleanup) = try await make(maximumConnections: maximumConnections)
        do {
            let value = try await body(database)
            await cleanup()
            return value
        } catch {
            await cleanup()
            throw error
        }
    }

    /// A fresh migrated database and the call that drops it.
    static func make(maximumConnections: Int = 8, migrate: Bool = true) async throws -> (PostgresDatabase, @Sendable () async -> Void) {
        let base = try DatabaseURL(try #require(baseURL))
        let admin = PostgresDatabase(url: base, maximumConnections: 2, logger: logger)
        let name = "pl_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        try await admin.execute("CREATE DATABASE \(name)")
        var url = base
        url.database = name
        let database = migrate ? try await PostgresDatabase.open(url, maximumConnections: maximumConnections, logger: logger)
                               : PostgresDatabase(url: url, maximumConnections: maximumConnections, logger: logger)
        return (database, {
            database.close()
            try? await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            admin.close()
        })
    }
}

@Test func postgresIsThereWhenRequired() {
    if ProcessInfo.processInfo.environment["POSTLENS_REQUIRE_POSTGRES"] == "1" {
        #expect(TestDatabase.available, "POSTLENS_REQUIRE_POSTGRES=1 but POSTLENS_TEST_DATABASE_URL is not set: start one with scripts/test-postgres.sh start")
    }
}
