import Foundation
import GRDB
import JSON
import Store
import XCTest

/// A 1×1 PNG (different `seed`s give different bytes, so different hashes).
func tinyPNG(_ seed: UInt8 = 0) -> Data {
    var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    bytes += Array(repeating: seed, count: 32)
    return Data(bytes)
}

func temporaryDatabasePath(_ name: String = "store") throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-store-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory.appendingPathComponent("\(name).sqlite").path
}

final class MigrationTests: XCTestCase {
    func testMigratesAnEmptyFileToTheNewestSchema() async throws {
        let path = try temporaryDatabasePath()
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        let store = try SQLiteConversationStore(path: path)
        let applied = try await store.writer.read { db in try SQLiteConversationStore.migrator.appliedIdentifiers(db) }
        XCTAssertEqual(applied, Set(SQLiteConversationStore.migrationNames))
        XCTAssertEqual(SQLiteConversationStore.migrationNames.count, SQLiteConversationStore.schemaVersion)
        let journal = try await store.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        XCTAssertEqual(journal, "wal")
        let foreignKeys = try await store.writer.read { db in try Bool.fetchOne(db, sql: "PRAGMA foreign_keys") }
        XCTAssertEqual(foreignKeys, true)
        let tables = try await store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'grdb%' AND name NOT LIKE 'sqlite%' ORDER BY name")
        }
        XCTAssertEqual(tables, ["conversation", "image", "message", "messageImage"])
        let integrity = try await store.integrityCheck()
        XCTAssertEqual(integrity, "ok")
        // Opening again runs no migration and keeps working.
        let again = try SQLiteConversationStore(path: path)
        let list = try await again.listConversations()
        XCTAssertEqual(list, [])
    }

    func testMigratesFromThePreviousSchemaVersionKeepingData() async throws {
        let path = try temporaryDatabasePath()
        do {
            // A database as schema version 1 left it, with a conversation, a message and an image.
            let pool = try DatabasePool(path: path, configuration: SQLiteConversationStore.configuration())
            try SQLiteConversationStore.migrator.migrate(pool, upTo: SQLiteConversationStore.migrationNames[0])
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO conversation (id, title, createdAt, updatedAt) VALUES ('old', 'From v1', 1000, 2000)")
                try db.execute(sql: "INSERT INTO message (id, conversationId, position, role, content, createdAt) VALUES ('m1', 'old', 0, 'user', 'hello', 1500)")
                try db.execute(sql: "INSERT INTO image (sha256, mimeType, byteCount, data, createdAt) VALUES (?, 'image/png', 40, ?, 1500)",
                               arguments: [String(repeating: "a", count: 64), tinyPNG()])
                try db.execute(sql: "INSERT INTO messageImage (messageId, position, sha256) VALUES ('m1', 0, ?)",
                               arguments: [String(repeating: "a", count: 64)])
            }
            let columns = try await pool.read { db in try db.columns(in: "conversation").map(\.name) }
            XCTAssertFalse(columns.contains("parameters"))
        }
        let store = try SQLiteConversationStore(path: path)
        let conversation = try await store.conversation(id: "old")
        XCTAssertEqual(conversation.title, "From v1")
        XCTAssertEqual(conversation.createdAt, Date(timeIntervalSince1970: 1))
        XCTAssertNil(conversation.parameters)
        XCTAssertEqual(conversation.messages.map(\.content), ["hello"])
        XCTAssertEqual(conversation.messages[0].images.map(\.sha256), [String(repeating: "a", count: 64)])
        XCTAssertNil(conversation.messages[0].stats)
        // The v2 columns work on the migrated data.
        let updated = try await store.updateConversation(id: "old", title: nil, parameters: .object(["temperature": .number(0.2)]))
        XCTAssertEqual(updated.messageCount, 1)
        let reloaded = try await store.conversation(id: "old")
        XCTAssertEqual(reloaded.parameters, .object(["temperature": .number(0.2)]))
        let integrity = try await store.integrityCheck()
        XCTAssertEqual(integrity, "ok")
    }
}

final class CRUDTests: XCTestCase {
    func testCreateGetRenameListDelete() async throws {
        let store = try SQLiteConversationStore(path: try temporaryDatabasePath())
        let first = try await store.createConversation(title: "  First  ", parameters: .object(["max_tokens": .number(64)]))
        XCTAssertEqual(first.title, "First")
        try await Task.sleep(for: .milliseconds(5))
        let second = try await store.createConversation(title: "Second", parameters: nil)
        var list = try await store.listConversations()
        XCTAssertEqual(list.map(\.id), [second.id, first.id], "newest first")

        let user = try await store.appendMessage(to: first.id, NewMessage(role: .user, content: "What does the sign say?"))
        let answer = try await store.appendMessage(
            to: first.id, NewMessage(role: .assistant, content: "It says **OPEN**.",
                                     stats: .object(["completion_tokens": .number(5), "ttft_ms": .number(120)])))
        list = try await store.listConversations()
        XCTAssertEqual(list.first?.id, first.id, "a new message moves the conversation to the top")
        XCTAssertEqual(list.first?.messageCount, 2)

        let loaded = try await store.conversation(id: first.id)
        XCTAssertEqual(loaded.messages, [user, answer])
        XCTAssertEqual(loaded.parameters, .object(["max_tokens": .number(64)]))

        let renamed = try await store.renameConversation(id: first.id, title: "Shop sign")
        XCTAssertEqual(renamed.title, "Shop sign")
        let titled = try await store.conversation(id: first.id)
        XCTAssertEqual(titled.title, "Shop sign")

        try await store.deleteConversation(id: first.id)
        list = try await store.listConversations()
        XCTAssertEqual(list.map(\.id), [second.id])
        let messageCount = try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message") }
        XCTAssertEqual(messageCount, 0, "messages go with their conversation")
    }

    func testUnknownIdsAndInvalidInput() async throws {
        let store = try SQLiteConversationStore.inMemory()
        await XCTAssertThrowsStoreError(.conversationNotFound("nope")) { _ = try await store.conversation(id: "nope") }
        await XCTAssertThrowsStoreError(.conversationNotFound("nope")) { try await store.deleteConversation(id: "nope") }
        await XCTAssertThrowsStoreError(.conversationNotFound("nope")) { _ = try await store.renameConversation(id: "nope", title: "x") }
        await XCTAssertThrowsStoreError(.conversationNotFound("nope")) {
            _ = try await store.appendMessage(to: "nope", NewMessage(role: .user, content: "hi"))
        }
        await XCTAssertThrowsStoreError(.invalid("title must not be empty")) { _ = try await store.createConversation(title: " ", parameters: nil) }
        let conversation = try await store.createConversation(title: "A", parameters: nil)
        await XCTAssertThrowsStoreError(.invalid("an image is not PNG, JPEG, WebP or GIF")) {
            _ = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "x", images: [.bytes(Data("hello".utf8))]))
        }
        let unchanged = try await store.conversation(id: conversation.id)
        XCTAssertEqual(unchanged.messages, [], "a refused message leaves nothing behind")
    }

    func testTextWithNULCharactersComesBackWhole() async throws {
        let store = try SQLiteConversationStore.inMemory()
        let conversation = try await store.createConversation(title: "nul\u{0}title", parameters: nil)
        let appended = try await store.appendMessage(to: conversation.id, NewMessage(role: .assistant, content: "before\u{0}after, and more"))
        XCTAssertEqual(appended.content, "before\u{FFFD}after, and more")
        let reloaded = try await store.conversation(id: conversation.id)
        XCTAssertEqual(reloaded.messages.map(\.content), ["before\u{FFFD}after, and more"])
        XCTAssertEqual(reloaded.title, "nul\u{FFFD}title")
    }

    func testTruncateKeepsThePrefix() async throws {
        let store = try SQLiteConversationStore.inMemory()
        let conversation = try await store.createConversation(title: "T", parameters: nil)
        for index in 0..<4 {
            _ = try await store.appendMessage(to: conversation.id, NewMessage(role: index % 2 == 0 ? .user : .assistant, content: "m\(index)",
                                                                              images: index == 2 ? [.bytes(tinyPNG(9))] : []))
        }
        let truncated = try await store.truncateMessages(of: conversation.id, keeping: 2)
        XCTAssertEqual(truncated.messages.map(\.content), ["m0", "m1"])
        let images = try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM image") }
        XCTAssertEqual(images, 0, "the image of a cut message is gone")
        let appended = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "m2'"))
        let reloaded = try await store.conversation(id: conversation.id)
        XCTAssertEqual(reloaded.messages.last, appended)
        XCTAssertEqual(reloaded.messages.count, 3)
    }

    func testSearchByTitleAndText() async throws {
        let store = try SQLiteConversationStore.inMemory()
        let cats = try await store.createConversation(title: "Cat memes", parameters: nil)
        let promo = try await store.createConversation(title: "Promo", parameters: nil)
        _ = try await store.appendMessage(to: promo.id, NewMessage(role: .assistant, content: "50% off all SHOES this weekend, 周末优惠"))
        let byTitle = try await store.listConversations(matching: "cat")
        XCTAssertEqual(byTitle.map(\.id), [cats.id])
        XCTAssertNil(byTitle.first?.snippet)
        let byText = try await store.listConversations(matching: "shoes")
        XCTAssertEqual(byText.map(\.id), [promo.id])
        XCTAssertEqual(byText.first?.snippet?.contains("SHOES"), true)
        let chinese = try await store.listConversations(matching: "优惠")
        XCTAssertEqual(chinese.map(\.id), [promo.id])
        let literalPercent = try await store.listConversations(matching: "50%")
        XCTAssertEqual(literalPercent.map(\.id), [promo.id])
        let wildcard = try await store.listConversations(matching: "%")
        XCTAssertEqual(wildcard.map(\.id), [promo.id], "% is matched literally, not as a wildcard")
        let none = try await store.listConversations(matching: "dog")
        XCTAssertEqual(none, [])
    }
}

final class ImageTests: XCTestCase {
    func testImagesAreStoredOnceAndCleanedUp() async throws {
        let store = try SQLiteConversationStore(path: try temporaryDatabasePath())
        let a = try await store.createConversation(title: "A", parameters: nil)
        let b = try await store.createConversation(title: "B", parameters: nil)
        let shared = tinyPNG(1), onlyA = tinyPNG(2)
        let first = try await store.appendMessage(to: a.id, NewMessage(role: .user, content: "1", images: [.bytes(shared), .bytes(onlyA)]))
        _ = try await store.appendMessage(to: a.id, NewMessage(role: .user, content: "2", images: [.bytes(shared)]))
        let inB = try await store.appendMessage(to: b.id, NewMessage(role: .user, content: "3", images: [.stored(sha256: first.images[0].sha256)]))
        XCTAssertEqual(inB.images, [first.images[0]])
        XCTAssertEqual(first.images.map(\.mimeType), ["image/png", "image/png"])
        XCTAssertEqual(first.images[0].byteCount, shared.count)

        func imageCount() async throws -> Int {
            try await store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM image") ?? -1 }
        }
        var count = try await imageCount()
        XCTAssertEqual(count, 2, "three uses of two distinct images: two blobs")
        let fetched = try await store.image(sha256: first.images[0].sha256.uppercased())
        XCTAssertEqual(fetched.data, shared)

        try await store.deleteConversation(id: a.id)
        count = try await imageCount()
        XCTAssertEqual(count, 1, "the image only A used is gone; the one B uses stays")
        let stillThere = try await store.image(sha256: first.images[0].sha256)
        XCTAssertEqual(stillThere.data, shared)
        await XCTAssertThrowsStoreError(.imageNotFound(first.images[1].sha256)) { _ = try await store.image(sha256: first.images[1].sha256) }

        try await store.deleteConversation(id: b.id)
        count = try await imageCount()
        XCTAssertEqual(count, 0)
        await XCTAssertThrowsStoreError(.invalid("image \(first.images[0].sha256) is referenced by hash but not stored here (export with images inline)")) {
            let c = try await store.createConversation(title: "C", parameters: nil)
            _ = try await store.appendMessage(to: c.id, NewMessage(role: .user, content: "x", images: [.stored(sha256: first.images[0].sha256)]))
        }
    }
}

final class ExportImportTests: XCTestCase {
    func testRoundTripIsIdenticalAndIdsAreKeptWhenFree() async throws {
        let source = try SQLiteConversationStore.inMemory()
        let conversation = try await source.createConversation(title: "Menu 菜单", parameters: .object(["temperature": .number(0.7)]))
        _ = try await source.appendMessage(to: conversation.id, NewMessage(role: .user, content: "Read it", images: [.bytes(tinyPNG(3))]))
        _ = try await source.appendMessage(to: conversation.id, NewMessage(role: .assistant, content: "| a | b |\n|---|---|\n| 1 | 2 |",
                                                                           stats: .object(["cached": .bool(true)])))
        let original = try await source.conversation(id: conversation.id)
        let document = try await source.export(ids: [conversation.id], inlineImages: true)
        let text = try ExportDocument.encoder().encode(document)
        let decoded = try ExportDocument.decoder().decode(ExportDocument.self, from: text)
        XCTAssertEqual(decoded, document)

        let target = try SQLiteConversationStore.inMemory()
        let imported = try await target.importDocument(decoded)
        XCTAssertEqual(imported.map(\.id), [conversation.id])
        let copy = try await target.conversation(id: conversation.id)
        XCTAssertEqual(copy, original)

        // Importing again gives a new id, same content.
        let again = try await target.importDocument(decoded)
        XCTAssertNotEqual(again[0].id, conversation.id)
        var second = try await target.conversation(id: again[0].id)
        XCTAssertNotEqual(second.messages.map(\.id), original.messages.map(\.id))
        second.id = original.id
        for index in second.messages.indices { second.messages[index].id = original.messages[index].id }
        XCTAssertEqual(second, original)
        let blobs = try await target.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM image") }
        XCTAssertEqual(blobs, 1, "two imports of one image: one blob")

        // By hash: works where the image is stored, refused where it is not.
        let byHash = try await source.export(ids: nil, inlineImages: false)
        XCTAssertNil(byHash.conversations[0].messages[0].images[0].dataURL)
        _ = try await target.importDocument(byHash)
        let empty = try SQLiteConversationStore.inMemory()
        do {
            _ = try await empty.importDocument(byHash)
            XCTFail("import by hash into a store without the image must fail")
        } catch StoreError.invalid(let reason) {
            XCTAssertTrue(reason.contains("referenced by hash"), reason)
        }
        let left = try await empty.listConversations()
        XCTAssertEqual(left, [])
    }

    func testMalformedImportsImportNothing() async throws {
        let store = try SQLiteConversationStore.inMemory()
        let good = ExportedConversation(id: "g", title: "Good", createdAt: Date(), updatedAt: Date(), parameters: nil,
                                        messages: [ExportedMessage(id: nil, role: .user, content: "hi", createdAt: Date(), stats: nil, images: [])])
        var badImage = good
        badImage.id = "b"
        badImage.messages[0].images = [ExportedImage(sha256: nil, mimeType: "image/png", byteCount: nil, dataURL: "data:image/png;base64,aGVsbG8=")]
        var wrongHash = good
        wrongHash.messages[0].images = [ExportedImage(sha256: String(repeating: "0", count: 64), mimeType: nil, byteCount: nil,
                                                      dataURL: encodeDataURL(tinyPNG(), mimeType: "image/png"))]
        var emptyTitle = good
        emptyTitle.title = ""
        var wrongVersion = ExportDocument(conversations: [good])
        wrongVersion.version = 99
        var wrongFormat = ExportDocument(conversations: [good])
        wrongFormat.format = "something.else"
        for document in [ExportDocument(conversations: [good, badImage]), ExportDocument(conversations: [good, wrongHash]),
                         ExportDocument(conversations: [good, emptyTitle]), wrongVersion, wrongFormat] {
            do {
                _ = try await store.importDocument(document)
                XCTFail("expected a refusal")
            } catch StoreError.invalid {
            }
            let list = try await store.listConversations()
            XCTAssertEqual(list, [], "nothing half-imported")
        }
    }
}

func XCTAssertThrowsStoreError(_ expected: StoreError, file: StaticString = #filePath, line: UInt = #line,
                               _ body: () async throws -> Void) async {
    do {
        try await body()
        XCTFail("expected \(expected)", file: file, line: line)
    } catch let error as StoreError {
        XCTAssertEqual(error, expected, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}
