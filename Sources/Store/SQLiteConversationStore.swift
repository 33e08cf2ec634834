import Crypto
import Foundation
import JSON
import GRDB

/// `ConversationStore` on one SQLite file through GRDB: WAL journal (readers never wait for the writer),
/// foreign keys on, migrations run when the store opens.
///
/// Schema (version 2, see `migrator`):
/// - `conversation(id PK, title, createdAt, updatedAt, parameters JSON)`
/// - `message(id PK, conversationId → conversation ON DELETE CASCADE, position, role, content, createdAt, stats JSON)`
/// - `image(sha256 PK, mimeType, byteCount, data BLOB, createdAt)`
/// - `messageImage(messageId → message ON DELETE CASCADE, position, sha256 → image, PK(messageId, position))`
/// Times are integer milliseconds since 1970.
public final class SQLiteConversationStore: ConversationStore {
    /// The newest schema version (the number of migrations).
    public static let schemaVersion = 2
    /// Names of the migrations, in order: `schemaVersion` of them.
    public static let migrationNames = ["v1-conversations-messages-images", "v2-parameters-stats"]

    public let writer: any DatabaseWriter

    /// Opens (creating when missing) the database file at `path`, in WAL mode, and migrates it.
    public convenience init(path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try self.init(writer: DatabasePool(path: path, configuration: Self.configuration()))
    }

    /// A private in-memory database (tests, `--no-history`).
    public static func inMemory() throws -> SQLiteConversationStore {
        try SQLiteConversationStore(writer: DatabaseQueue(configuration: configuration()))
    }

    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        try Self.migrator.migrate(writer)
    }

    public static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.label = "postlens.store"
        return configuration
    }

    /// The schema's history. Never edit a shipped migration: add one.
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(migrationNames[0]) { db in
            try db.execute(sql: """
                CREATE TABLE conversation (
                    id TEXT PRIMARY KEY NOT NULL,
                    title TEXT NOT NULL,
                    createdAt INTEGER NOT NULL,
                    updatedAt INTEGER NOT NULL
                );
                CREATE TABLE message (
                    id TEXT PRIMARY KEY NOT NULL,
                    conversationId TEXT NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                    content TEXT NOT NULL,
                    createdAt INTEGER NOT NULL,
                    UNIQUE (conversationId, position)
                );
                CREATE TABLE image (
                    sha256 TEXT PRIMARY KEY NOT NULL,
                    mimeType TEXT NOT NULL,
                    byteCount INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    createdAt INTEGER NOT NULL
                );
                CREATE TABLE messageImage (
                    messageId TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    sha256 TEXT NOT NULL REFERENCES image(sha256),
                    PRIMARY KEY (messageId, position)
                );
                CREATE INDEX messageImage_sha256 ON messageImage(sha256);
                """)
        }
        migrator.registerMigration(migrationNames[1]) { db in
            try db.execute(sql: """
                ALTER TABLE conversation ADD COLUMN parameters TEXT;
                ALTER TABLE message ADD COLUMN stats TEXT;
                CREATE INDEX conversation_updatedAt ON conversation(updatedAt);
                """)
        }
        return migrator
    }

    // MARK: - ConversationStore

    public func listConversations(matching query: String?, limit: Int) async throws -> [ConversationSummary] {
        let query = query?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return try await writer.read { db in
            if query.isEmpty {
                let rows = try Row.fetchAll(db, sql: """
                    SELECT c.*, (SELECT COUNT(*) FROM message m WHERE m.conversationId = c.id) AS messageCount
                    FROM conversation c ORDER BY c.updatedAt DESC, c.rowid DESC LIMIT ?
                    """, arguments: [max(0, limit)])
                return rows.map { Self.summary($0, snippet: nil) }
            }
            let pattern = "%" + Self.escapeLike(query) + "%"
            let rows = try Row.fetchAll(db, sql: """
                SELECT c.*, (SELECT COUNT(*) FROM message m WHERE m.conversationId = c.id) AS messageCount,
                       (SELECT m.content FROM message m WHERE m.conversationId = c.id AND m.content LIKE ?1 ESCAPE '\\'
                        ORDER BY m.position LIMIT 1) AS matched
                FROM conversation c
                WHERE c.title LIKE ?1 ESCAPE '\\'
                   OR EXISTS (SELECT 1 FROM message m WHERE m.conversationId = c.id AND m.content LIKE ?1 ESCAPE '\\')
                ORDER BY c.updatedAt DESC, c.rowid DESC LIMIT ?2
                """, arguments: [pattern, max(0, limit)])
            return rows.map { row in
                let matched: String? = row["matched"]
                return Self.summary(row, snippet: matched.map { Self.snippet(of: $0, around: query) })
            }
        }
    }

    public func createConversation(title: String, parameters: JSONValue?) async throws -> Conversation {
        let title = try Self.validTitle(title)
        let parametersText = try parameters.map { try $0.jsonText() }
        let id = UUID().uuidString.lowercased()
        let now = Self.nowMs()
        try await writer.write { db in
            try db.execute(sql: "INSERT INTO conversation (id, title, createdAt, updatedAt, parameters) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, title, now, now, parametersText])
        }
        return Conversation(id: id, title: title, createdAt: Self.date(now), updatedAt: Self.date(now),
                            parameters: parameters, messages: [])
    }

    public func conversation(id: String) async throws -> Conversation {
        try await writer.read { db in try Self.load(db, id: id) }
    }

    public func updateConversation(id: String, title: String?, parameters: JSONValue?) async throws -> ConversationSummary {
        let title = try title.map(Self.validTitle)
        let parametersText = try parameters.map { try $0.jsonText() }
        return try await writer.write { db in
            guard try Self.exists(db, id: id) else { throw StoreError.conversationNotFound(id) }
            if let title {
                try db.execute(sql: "UPDATE conversation SET title = ?, updatedAt = ? WHERE id = ?", arguments: [title, Self.nowMs(), id])
            }
            if let parametersText {
                try db.execute(sql: "UPDATE conversation SET parameters = ? WHERE id = ?", arguments: [parametersText, id])
            }
            return try Self.summary(db, id: id)
        }
    }

    public func deleteConversation(id: String) async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM conversation WHERE id = ?", arguments: [id])
            guard db.changesCount > 0 else { throw StoreError.conversationNotFound(id) }
            try Self.removeUnreferencedImages(db)
        }
    }

    public func appendMessage(to conversationID: String, _ message: NewMessage) async throws -> StoredMessage {
        let prepared = try Self.prepareImages(message.images)
        let statsText = try message.stats.map { try $0.jsonText() }
        let id = UUID().uuidString.lowercased()
        let created = message.createdAt.map(Self.ms) ?? Self.nowMs()
        return try await writer.write { db in
            guard try Self.exists(db, id: conversationID) else { throw StoreError.conversationNotFound(conversationID) }
            let refs = try Self.insertMessage(db, id: id, conversationID: conversationID, role: message.role,
                                              content: message.content, createdAt: created, stats: statsText, images: prepared)
            try db.execute(sql: "UPDATE conversation SET updatedAt = ? WHERE id = ?", arguments: [max(created, Self.nowMs()), conversationID])
            return StoredMessage(id: id, role: message.role, content: storableText(message.content), images: refs,
                                 createdAt: Self.date(created), stats: message.stats)
        }
    }

    public func truncateMessages(of conversationID: String, keeping count: Int) async throws -> Conversation {
        guard count >= 0 else { throw StoreError.invalid("keep must be 0 or more") }
        return try await writer.write { db in
            guard try Self.exists(db, id: conversationID) else { throw StoreError.conversationNotFound(conversationID) }
            // Positions are dense from 0 (appends use MAX+1 and truncation only cuts the tail).
            try db.execute(sql: """
                DELETE FROM message WHERE conversationId = ? AND id NOT IN
                    (SELECT id FROM message WHERE conversationId = ? ORDER BY position LIMIT ?)
                """, arguments: [conversationID, conversationID, count])
            if db.changesCount > 0 {
                try db.execute(sql: "UPDATE conversation SET updatedAt = ? WHERE id = ?", arguments: [Self.nowMs(), conversationID])
                try Self.removeUnreferencedImages(db)
            }
            return try Self.load(db, id: conversationID)
        }
    }

    public func image(sha256: String) async throws -> StoredImage {
        let hash = sha256.lowercased()
        return try await writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM image WHERE sha256 = ?", arguments: [hash]) else {
                throw StoreError.imageNotFound(hash)
            }
            return StoredImage(ref: ImageRef(sha256: row["sha256"], mimeType: row["mimeType"], byteCount: row["byteCount"]),
                               data: row["data"])
        }
    }

    public func export(ids: [String]?, inlineImages: Bool) async throws -> ExportDocument {
        try await writer.read { db in
            let allIDs: [String]
            if let ids {
                allIDs = ids
            } else {
                allIDs = try String.fetchAll(db, sql: "SELECT id FROM conversation ORDER BY updatedAt DESC, rowid DESC")
            }
            var blobs: [String: Data] = [:]
            let conversations = try allIDs.map { id -> ExportedConversation in
                let conversation = try Self.load(db, id: id)
                return ExportedConversation(
                    id: conversation.id, title: conversation.title, createdAt: conversation.createdAt,
                    updatedAt: conversation.updatedAt, parameters: conversation.parameters,
                    messages: try conversation.messages.map { message in
                        ExportedMessage(
                            id: message.id, role: message.role, content: message.content, createdAt: message.createdAt,
                            stats: message.stats,
                            images: try message.images.map { ref in
                                var dataURL: String?
                                if inlineImages {
                                    if blobs[ref.sha256] == nil {
                                        blobs[ref.sha256] = try Data.fetchOne(db, sql: "SELECT data FROM image WHERE sha256 = ?",
                                                                              arguments: [ref.sha256])
                                    }
                                    dataURL = blobs[ref.sha256].map { encodeDataURL($0, mimeType: ref.mimeType) }
                                }
                                return ExportedImage(sha256: ref.sha256, mimeType: ref.mimeType, byteCount: ref.byteCount, dataURL: dataURL)
                            })
                    })
            }
            return ExportDocument(conversations: conversations)
        }
    }

    public func importDocument(_ document: ExportDocument) async throws -> [ConversationSummary] {
        // Decode and check every image before touching the database.
        let prepared = try ConversationRules.prepareImport(document)
        let items = prepared
        return try await writer.write { db in
            var summaries: [ConversationSummary] = []
            for item in items {
                let source = item.source
                let id = ConversationRules.importedID(source.id, isTaken: try Self.exists(db, id: source.id.trimmingCharacters(in: .whitespaces)))
                let title = try Self.validTitle(source.title)
                try db.execute(sql: "INSERT INTO conversation (id, title, createdAt, updatedAt, parameters) VALUES (?, ?, ?, ?, ?)",
                               arguments: [id, title, Self.ms(source.createdAt), Self.ms(source.updatedAt), item.parameters])
                for prepared in item.messages {
                    let message = prepared.message
                    let messageIDTaken = try Bool.fetchOne(db, sql: "SELECT 1 FROM message WHERE id = ?", arguments: [message.id ?? ""]) == true
                    let messageID = ConversationRules.importedID(message.id, isTaken: messageIDTaken)
                    _ = try Self.insertMessage(db, id: messageID, conversationID: id, role: message.role, content: message.content,
                                               createdAt: Self.ms(message.createdAt), stats: prepared.stats, images: prepared.images)
                }
                summaries.append(try Self.summary(db, id: id))
            }
            return summaries
        }
    }

    /// `PRAGMA integrity_check` (and the foreign keys): "ok" when the file is sound.
    public func integrityCheck() async throws -> String {
        try await writer.read { db in
            let lines = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            let foreign = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
            return foreign.isEmpty ? lines.joined(separator: "\n") : "foreign key violations: \(foreign.count)"
        }
    }

    // MARK: - Helpers

    typealias PreparedImage = ConversationRules.PreparedImage

    static func prepareImages(_ inputs: [ImageInput]) throws -> [PreparedImage] { try ConversationRules.prepareImages(inputs) }

    static func insertMessage(_ db: Database, id: String, conversationID: String, role: MessageRole, content: String,
                              createdAt: Int64, stats: String?, images: [PreparedImage]) throws -> [ImageRef] {
        let position = try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(position) + 1, 0) FROM message WHERE conversationId = ?",
                                        arguments: [conversationID]) ?? 0
        try db.execute(sql: """
            INSERT INTO message (id, conversationId, position, role, content, createdAt, stats) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, conversationID, position, role.rawValue, storableText(content), createdAt, stats])
        var refs: [ImageRef] = []
        for (index, image) in images.enumerated() {
            var ref = image.ref
            if let data = image.data {
                try db.execute(sql: """
                    INSERT INTO image (sha256, mimeType, byteCount, data, createdAt) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(sha256) DO NOTHING
                    """, arguments: [ref.sha256, ref.mimeType, ref.byteCount, data, nowMs()])
            } else {
                guard let row = try Row.fetchOne(db, sql: "SELECT mimeType, byteCount FROM image WHERE sha256 = ?", arguments: [ref.sha256]) else {
                    throw ConversationRules.missingImage(ref.sha256)
                }
                ref.mimeType = row["mimeType"]
                ref.byteCount = row["byteCount"]
            }
            try db.execute(sql: "INSERT INTO messageImage (messageId, position, sha256) VALUES (?, ?, ?)",
                           arguments: [id, index, ref.sha256])
            refs.append(ref)
        }
        return refs
    }

    static func removeUnreferencedImages(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM image WHERE NOT EXISTS (SELECT 1 FROM messageImage mi WHERE mi.sha256 = image.sha256)")
    }

    static func load(_ db: Database, id: String) throws -> Conversation {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM conversation WHERE id = ?", arguments: [id]) else {
            throw StoreError.conversationNotFound(id)
        }
        var imagesByMessage: [String: [ImageRef]] = [:]
        let imageRows = try Row.fetchAll(db, sql: """
            SELECT mi.messageId, i.sha256, i.mimeType, i.byteCount FROM messageImage mi
            JOIN image i ON i.sha256 = mi.sha256 JOIN message m ON m.id = mi.messageId
            WHERE m.conversationId = ? ORDER BY mi.messageId, mi.position
            """, arguments: [id])
        for imageRow in imageRows {
            imagesByMessage[imageRow["messageId"], default: []].append(
                ImageRef(sha256: imageRow["sha256"], mimeType: imageRow["mimeType"], byteCount: imageRow["byteCount"]))
        }
        let messages = try Row.fetchAll(db, sql: "SELECT * FROM message WHERE conversationId = ? ORDER BY position", arguments: [id]).map { m in
            let messageID: String = m["id"]
            return StoredMessage(id: messageID, role: MessageRole(rawValue: m["role"]) ?? .user, content: m["content"],
                                 images: imagesByMessage[messageID] ?? [], createdAt: date(m["createdAt"]),
                                 stats: JSONValue.parse(m["stats"]))
        }
        return Conversation(id: row["id"], title: row["title"], createdAt: date(row["createdAt"]), updatedAt: date(row["updatedAt"]),
                            parameters: JSONValue.parse(row["parameters"]), messages: messages)
    }

    static func summary(_ db: Database, id: String) throws -> ConversationSummary {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT c.*, (SELECT COUNT(*) FROM message m WHERE m.conversationId = c.id) AS messageCount
            FROM conversation c WHERE c.id = ?
            """, arguments: [id]) else { throw StoreError.conversationNotFound(id) }
        return summary(row, snippet: nil)
    }

    static func summary(_ row: Row, snippet: String?) -> ConversationSummary {
        ConversationSummary(id: row["id"], title: row["title"], createdAt: date(row["createdAt"]), updatedAt: date(row["updatedAt"]),
                            messageCount: row["messageCount"], snippet: snippet)
    }

    static func exists(_ db: Database, id: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM conversation WHERE id = ?", arguments: [id]) ?? false
    }

    static func validTitle(_ title: String) throws -> String { try ConversationRules.validTitle(title) }
    static func escapeLike(_ text: String) -> String { ConversationRules.escapeLike(text) }
    static func snippet(of text: String, around query: String) -> String { ConversationRules.snippet(of: text, around: query) }

    static func nowMs() -> Int64 { ms(Date()) }
    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
