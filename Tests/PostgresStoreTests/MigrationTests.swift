import Foundation
import PostgresStore
import Store
import Testing

@Suite(.enabled(if: TestDatabase.available, "needs POSTLENS_TEST_DATABASE_URL (scripts/test-postgres.sh start)"))
struct MigrationTests {
    @Test func aFreshDatabaseIsMigratedOnceEvenWhenManyStartTogether() async throws {
        let (database, cleanup) = try await TestDatabase.make(migrate: false)
        defer { Task { await cleanup() } }  // the database is dropped once the test is over
        // Four processes starting at once: one applies the migrations, the others find nothing to do.
        let url = database.url
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let peer = PostgresDatabase(url: url, maximumConnections: 2, logger: TestDatabase.logger)
                    defer { peer.close() }
                    return try await peer.migrate()
                }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        let all = PostgresMigrations.all.map(\.version)
        #expect(applied.filter { !$0.isEmpty } == [all], "exactly one process applied them: \(applied)")
        #expect(try await database.appliedVersions() == all)
        #expect(try await database.migrate() == [], "a second run changes nothing")
        #expect(try await database.integer("SELECT count(*) FROM job") == 0)
        #expect(try await database.integer("SELECT count(*) FROM conversation") == 0)
    }

    @Test func aNewerSchemaIsRefusedWithAClearMessage() async throws {
        try await TestDatabase.withFresh { database in
            try await database.execute("INSERT INTO postlens_schema_migrations (version, name) VALUES (99, 'from-the-future')")
            do {
                try await database.migrate()
                Issue.record("a newer schema must be refused")
            } catch let error as StoreError {
                #expect("\(error)".contains("upgrade postlens"), "\(error)")
            }
        }
    }

    @Test func unreachableDatabasesSayWhatToCheck() async throws {
        var url = try DatabaseURL(try #require(TestDatabase.baseURL))
        url.port = 1  // nothing listens there
        do {
            _ = try await PostgresDatabase.open(url, wait: .zero, logger: TestDatabase.logger)
            Issue.record("expected a failure")
        } catch let error as StoreError {
            guard case .unavailable(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("127.0.0.1:1") && message.contains("check that PostgreSQL is running"), "\(message)")
            #expect(!message.contains("password"))
        }
        url = try DatabaseURL(try #require(TestDatabase.baseURL))
        url.database = "no_such_database_here"
        do {
            _ = try await PostgresDatabase.open(url, wait: .zero, logger: TestDatabase.logger)
            Issue.record("expected a failure")
        } catch let error as StoreError {
            #expect("\(error)".contains("no_such_database_here"), "\(error)")
        }
    }
}

@Test func databaseURLsAreReadLikeLibpqReadsThem() throws {
    let full = try DatabaseURL("postgres://alice:s%40cret@db.internal:6543/jobs?sslmode=require&application_name=w1")
    #expect(full.host == "db.internal" && full.port == 6543 && full.user == "alice" && full.password == "s@cret" && full.database == "jobs")
    #expect(full.tls == .require && full.applicationName == "w1")
    #expect(full.description == "postgres://alice:***@db.internal:6543/jobs", "the password never shows")
    let short = try DatabaseURL("postgresql://bob@localhost")
    #expect(short.port == 5432 && short.database == "bob" && short.password == nil && short.tls == .prefer)
    let socket = try DatabaseURL("postgres:///postlens?host=/var/run/postgresql")
    #expect(socket.socketDirectory == "/var/run/postgresql" && socket.database == "postlens")
    for bad in ["mysql://x/y", "postgres://h:99999/db", "postgres://h/db?sslmode=maybe", "not a url"] {
        #expect(throws: StoreError.self, "\(bad)") { _ = try DatabaseURL(bad) }
    }
}
