import Foundation
import GRDB
import Store
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A writer process killed with SIGKILL, in the middle of a transaction or between commits, leaves a database
/// that opens, passes `PRAGMA integrity_check`, and holds every committed transaction whole and no other.
///
/// The writer is this test binary again, running `CrashWriterChild.testWriterChild` with the database path in
/// its environment (that test does nothing in a normal run).
final class CrashSafetyTests: XCTestCase {
    static let databaseVariable = "POSTLENS_CRASH_WRITER_DB"
    static let modeVariable = "POSTLENS_CRASH_WRITER_MODE"
    static let markerVariable = "POSTLENS_CRASH_WRITER_MARKER"

    func testKilledInsideALongTransaction() async throws {
        let path = try temporaryDatabasePath("crash-long")
        let store = try SQLiteConversationStore(path: path)
        let before = try await store.createConversation(title: "committed before", parameters: nil)
        _ = try await store.appendMessage(to: before.id, NewMessage(role: .user, content: "safe", images: [.bytes(tinyPNG(7))]))

        try killWriter(path: path, mode: "long", afterMarker: 0.3)

        let reopened = try SQLiteConversationStore(path: path)
        let integrity = try await reopened.integrityCheck()
        XCTAssertEqual(integrity, "ok")
        let titles = try await reopened.listConversations().map(\.title)
        XCTAssertTrue(titles.contains("committed before"))
        XCTAssertEqual(titles.filter { $0.hasPrefix("child committed") }.count, 3, "the child's three commits survive: \(titles)")
        XCTAssertFalse(titles.contains { $0.hasPrefix("uncommitted") }, "nothing of the killed transaction is visible")
        let blobs = try await reopened.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM image") }
        XCTAssertEqual(blobs, 1 + 3)
        // And it takes writes again.
        let after = try await reopened.createConversation(title: "after", parameters: nil)
        _ = try await reopened.appendMessage(to: after.id, NewMessage(role: .user, content: "ok", images: [.bytes(tinyPNG(7))]))
        let finalCheck = try await reopened.integrityCheck()
        XCTAssertEqual(finalCheck, "ok")
    }

    func testKilledWhileCommittingQuickly() async throws {
        for round in 0..<3 {
            let path = try temporaryDatabasePath("crash-quick-\(round)")
            _ = try SQLiteConversationStore(path: path)
            try killWriter(path: path, mode: "quick", afterMarker: 0.15 + 0.1 * Double(round))
            let reopened = try SQLiteConversationStore(path: path)
            let integrity = try await reopened.integrityCheck()
            XCTAssertEqual(integrity, "ok")
            let summaries = try await reopened.listConversations(matching: nil, limit: 100_000)
            XCTAssertGreaterThan(summaries.count, 0)
            for summary in summaries {
                XCTAssertEqual(summary.messageCount, 3, "each transaction wrote a conversation with three messages, or nothing")
            }
        }
    }

    /// Starts the writer, waits for its marker file, waits `afterMarker` seconds more, then SIGKILLs it.
    private func killWriter(path: String, mode: String, afterMarker: Double) throws {
        let marker = path + ".marker"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["StoreTests.CrashWriterChild/testWriterChild"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.databaseVariable] = path
        environment[Self.modeVariable] = mode
        environment[Self.markerVariable] = marker
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: marker) {
            guard process.isRunning else { XCTFail("the writer exited with \(process.terminationStatus) before its marker"); return }
            guard Date() < deadline else { process.terminate(); XCTFail("no marker after 60 s"); return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: afterMarker)
        XCTAssertTrue(process.isRunning, "the writer must still be writing when killed")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(process.terminationStatus, SIGKILL)
    }
}

/// The writer half of `CrashSafetyTests` (a no-op unless started by it).
final class CrashWriterChild: XCTestCase {
    func testWriterChild() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment[CrashSafetyTests.databaseVariable], let marker = environment[CrashSafetyTests.markerVariable] else {
            return
        }
        let store = try SQLiteConversationStore(path: path)
        let big = Data(repeating: 0x5A, count: 256 * 1024)
        if environment[CrashSafetyTests.modeVariable] == "long" {
            for index in 0..<3 {
                let conversation = try await store.createConversation(title: "child committed \(index)", parameters: nil)
                _ = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "x", images: [.bytes(tinyPNG(UInt8(20 + index)))]))
            }
            // One transaction that never ends: rows and blobs big enough to spill into the WAL before commit.
            try await store.writer.write { db in
                for index in 0..<Int.max {
                    try db.execute(sql: "INSERT INTO conversation (id, title, createdAt, updatedAt) VALUES (?, ?, 0, 0)",
                                   arguments: ["u\(index)", "uncommitted \(index)"])
                    var blob = big
                    blob[0] = UInt8(index % 256)
                    blob[1] = UInt8((index / 256) % 256)
                    try db.execute(sql: "INSERT INTO image (sha256, mimeType, byteCount, data, createdAt) VALUES (?, 'image/png', ?, ?, 0)",
                                   arguments: ["u\(index)", blob.count, blob])
                    if index == 20 { _ = FileManager.default.createFile(atPath: marker, contents: Data()) }
                    if index > 20 { usleep(2000) }
                }
            }
        } else {
            var counter = 0
            while true {
                let index = counter
                try await store.writer.write { db in
                    let id = "q\(index)"
                    try db.execute(sql: "INSERT INTO conversation (id, title, createdAt, updatedAt) VALUES (?, ?, 0, 0)", arguments: [id, "quick \(index)"])
                    for position in 0..<3 {
                        try db.execute(sql: "INSERT INTO message (id, conversationId, position, role, content, createdAt) VALUES (?, ?, ?, 'user', ?, 0)",
                                       arguments: ["\(id)-\(position)", id, position, String(repeating: "text ", count: 200)])
                    }
                }
                if index == 10 { _ = FileManager.default.createFile(atPath: marker, contents: Data()) }
                counter += 1
            }
        }
    }
}
