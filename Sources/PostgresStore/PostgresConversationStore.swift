import Foundation
import JSON
import Logging
import PostgresNIO
import Store

/// `ConversationStore` in PostgreSQL, so that several `postlens serve` processes behind a load balancer show and
/// continue the same conversations. Same rules and answers as `SQLiteConversationStore` (the tests run one suite
/// against both); times are integer milliseconds, as there.
///
/// Two servers may append to one conversation at the same moment: `appendMessage` locks the conversation's row
/// (`FOR UPDATE`) before it computes the next position, so positions stay dense and unique.
public struct PostgresConversationStore: ConversationStore {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) { self.database = database }

    var logger: Logger { database.logger }

    public func listConversations(matching query: String?, limit: Int) async throws -> [ConversationSummary] {
        let query = query?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let logger = logger, limit = max(0, limit)
        return try await database.withConnection { connection in
            if query.isEmpty {
                return try await connection.query("""
                    SELECT c.id, c.title, c.created_at, c.updated_at,
                           (SELECT count(*) FROM message m WHERE m.conversation_id = c.id) AS message_count
                    FROM conversation c ORDER BY c.updated_at DESC, c.created_seq DESC LIMIT \(limit)
                    """, logger: logger).all().map { try Self.summary($0, snippet: nil) }
            }
            let pattern = "%" + ConversationRules.escapeLike(query) + "%"
            return try await connection.query("""
                SELECT c.id, c.title, c.created_at, c.updated_at,
                       (SELECT count(*) FROM message m WHERE m.conversation_id = c.id) AS message_count,
                       (SELECT m.content FROM message m WHERE m.conversation_id = c.id AND m.content ILIKE \(pattern) ESCAPE '\\'
                        ORDER BY m.position LIMIT 1) AS matched
                FROM conversation c
                WHERE c.title ILIKE \(pattern) ESCAPE '\\'
                   OR EXISTS (SELECT 1 FROM message m WHERE m.conversation_id = c.id AND m.content ILIKE \(pattern) ESCAPE '\\')
                ORDER BY c.updated_at DESC, c.created_seq DESC LIMIT \(limit)
                """, logger: logger).all().map { row in
                let matched = try row.value("matched", as: String?.self)
                return try Self.summary(row, snippet: matched.map { ConversationRules.snippet(of: $0, around: query) })
            }
        }
    }

    public func createConversation(title: String, parameters: JSONValue?) async throws -> Conversation {
        let title = try ConversationRules.validTitle(title)
        let parametersText = try ConversationRules.jsonText(parameters)
        let id = ConversationRules.newID(), now = ConversationRules.nowMs(), logger = logger
        try await database.withConnection { connection in
            try await connection.query("""
                INSERT INTO conversation (id, title, created_at, updated_at, parameters) VALUES (\(id), \(title), \(now), \(now), \(parametersText))
                """, logger: logger)
        }
        return Conversation(id: id, title: title, createdAt: ConversationRules.date(now), updatedAt: ConversationRules.date(now),
                            parameters: parameters, messages: [])
    }

    public func conversation(id: String) async throws -> Conversation {
        let logger = logger
        return try await database.withConnection { connection in try await Self.load(connection, id: id, logger: logger) }
    }

    public func updateConversation(id: String, title: String?, parameters: JSONValue?) async throws -> ConversationSummary {
        let title = try title.map { try ConversationRules.validTitle($0) }
        let parametersText = try ConversationRules.jsonText(parameters)
        let logger = logger
        return try await database.transaction { connection in
            guard try await Self.lock(connection, id: id, logger: logger) else { throw StoreError.conversationNotFound(id) }
            if let title {
                try await connection.query("UPDATE conversation SET title = \(title), updated_at = \(ConversationRules.nowMs()) WHERE id = \(id)",
                                           logger: logger)
            }
            if let parametersText {
                try await connection.query("UPDATE conversation SET parameters = \(parametersText) WHERE id = \(id)", logger: logger)
            }
            return try await Self.summary(connection, id: id, logger: logger)
        }
    }

    public func deleteConversation(id: String) async throws {
        let logger = logger
        try await database.transaction { connection in
            let deleted = try await connection.query("DELETE FROM conversation WHERE id = \(id) RETURNING id", logger: logger).all()
            guard !deleted.isEmpty else { throw StoreError.conversationNotFound(id) }
            try await Self.removeUnreferencedImages(connection, logger: logger)
        }
    }

    public func appendMessage(to conversationID: String, _ message: NewMessage) async throws -> StoredMessage {
        let prepared = try ConversationRules.prepareImages(message.images)
        let statsText = try ConversationRules.jsonText(message.stats)
        let id = ConversationRules.newID()
        let created = message.createdAt.map(ConversationRules.ms) ?? ConversationRules.nowMs()
        let logger = logger
        return try await database.transaction { connection in
            guard try await Self.lock(connection, id: conversationID, logger: logger) else {
                throw StoreError.conversationNotFound(conversationID)
            }
            let refs = try await Self.insertMessage(connection, id: id, conversationID: conversationID, role: message.role,
                                                    content: message.content, createdAt: created, stats: statsText, images: prepared,
                                                    logger: logger)
            let updated = max(created, ConversationRules.nowMs())
            try await connection.query("UPDATE conversation SET updated_at = \(updated) WHERE id = \(conversationID)", logger: logger)
            return StoredMessage(id: id, role: message.role, content: ConversationRules.storable(message.content), images: refs,
                                 createdAt: ConversationRules.date(created), stats: message.stats)
        }
    }

    public func truncateMessages(of conversationID: String, keeping count: Int) async throws -> Conversation {
        guard count >= 0 else { throw StoreError.invalid("keep must be 0 or more") }
        let logger = logger
        return try await database.transaction { connection in
            guard try await Self.lock(connection, id: conversationID, logger: logger) else {
                throw StoreError.conversationNotFound(conversationID)
            }
            let deleted = try await connection.query("""
                DELETE FROM message WHERE conversation_id = \(conversationID) AND position >= \(count) RETURNING id
                """, logger: logger).all()
            if !deleted.isEmpty {
                try await connection.query("UPDATE conversation SET updated_at = \(ConversationRules.nowMs()) WHERE id = \(conversationID)",
                                           logger: logger)
                try await Self.removeUnreferencedImages(connection, logger: logger)
            }
            return try await Self.load(connection, id: conversationID, logger: logger)
        }
    }

    public func image(sha256: String) async throws -> StoredImage {
        let hash = sha256.lowercased(), logger = logger
        return try await database.withConnection { connection in
            guard let row = try await connection.query("SELECT sha256, mime_type, byte_count, data FROM image WHERE sha256 = \(hash)",
                                                       logger: logger).all().first else {
                throw StoreError.imageNotFound(hash)
            }
            return StoredImage(ref: ImageRef(sha256: try row.value("sha256"), mimeType: try row.value("mime_type"),
                                             byteCount: try row.value("byte_count")),
                               data: try row.value("data"))
        }
    }

    public func export(ids: [String]?, inlineImages: Bool) async throws -> ExportDocument {
        let logger = logger
        return try await database.transaction { connection in
            // One snapshot for the whole document.
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: logger)
            var allIDs = ids ?? []
            if ids == nil {
                allIDs = try await connection.query("SELECT id FROM conversation ORDER BY updated_at DESC, created_seq DESC", logger: logger)
                    .all().map { try $0.value("id", as: String.self) }
            }
            var blobs: [String: Data] = [:]
            var conversations: [ExportedConversation] = []
            for id in allIDs {
                let conversation = try await Self.load(connection, id: id, logger: logger)
                var messages: [ExportedMessage] = []
                for message in conversation.messages {
                    var images: [ExportedImage] = []
                    for ref in message.images {
                        var dataURL: String?
                        if inlineImages {
                            if blobs[ref.sha256] == nil {
                                blobs[ref.sha256] = try await connection.query("SELECT data FROM image WHERE sha256 = \(ref.sha256)",
                                                                               logger: logger).all().first?.value("data", as: Data.self)
                            }
                            dataURL = blobs[ref.sha256].map { encodeDataURL($0, mimeType: ref.mimeType) }
                        }
                        images.append(ExportedImage(sha256: ref.sha256, mimeType: ref.mimeType, byteCount: ref.byteCount, dataURL: dataURL))
                    }
                    messages.append(ExportedMessage(id: message.id, role: message.role, content: message.content,
                                                    createdAt: message.createdAt, stats: message.stats, images: images))
                }
                conversations.append(ExportedConversation(id: conversation.id, title: conversation.title, createdAt: conversation.createdAt,
                                                          updatedAt: conversation.updatedAt, parameters: conversation.parameters,
                                                          messages: messages))
            }
            return ExportDocument(conversations: conversations)
        }
    }

    public func importDocument(_ document: ExportDocument) async throws -> [ConversationSummary] {
        let prepared = try ConversationRules.prepareImport(document)
        let logger = logger
        return try await database.transaction { connection in
            var summaries: [ConversationSummary] = []
            for item in prepared {
                let source = item.source
                let proposed = source.id.trimmingCharacters(in: .whitespaces)
                let taken = !(try await connection.query("SELECT 1 AS x FROM conversation WHERE id = \(proposed)", logger: logger).all().isEmpty)
                let id = ConversationRules.importedID(source.id, isTaken: taken)
                let title = try ConversationRules.validTitle(source.title)
                try await connection.query("""
                    INSERT INTO conversation (id, title, created_at, updated_at, parameters)
                    VALUES (\(id), \(title), \(ConversationRules.ms(source.createdAt)), \(ConversationRules.ms(source.updatedAt)), \(item.parameters))
                    """, logger: logger)
                for message in item.messages {
                    let messageTaken = !(try await connection.query("SELECT 1 AS x FROM message WHERE id = \(message.message.id ?? "")",
                                                                    logger: logger).all().isEmpty)
                    _ = try await Self.insertMessage(connection, id: ConversationRules.importedID(message.message.id, isTaken: messageTaken),
                                                     conversationID: id, role: message.message.role, content: message.message.content,
                                                     createdAt: ConversationRules.ms(message.message.createdAt), stats: message.stats,
                                                     images: message.images, logger: logger)
                }
                summaries.append(try await Self.summary(connection, id: id, logger: logger))
            }
            return summaries
        }
    }

    // MARK: - Helpers

    /// Locks the conversation's row for this transaction; false when there is none.
    static func lock(_ connection: PostgresConnection, id: String, logger: Logger) async throws -> Bool {
        !(try await connection.query("SELECT id FROM conversation WHERE id = \(id) FOR UPDATE", logger: logger).all().isEmpty)
    }

    static func insertMessage(_ connection: PostgresConnection, id: String, conversationID: String, role: MessageRole, content: String,
                              createdAt: Int64, stats: String?, images: [ConversationRules.PreparedImage],
                              logger: Logger) async throws -> [ImageRef] {
        let position = try await connection.query("""
            SELECT COALESCE(MAX(position) + 1, 0)::int AS next FROM message WHERE conversation_id = \(conversationID)
            """, logger: logger).all().first?.value("next", as: Int.self) ?? 0
        try await connection.query("""
            INSERT INTO message (id, conversation_id, position, role, content, created_at, stats)
            VALUES (\(id), \(conversationID), \(position), \(role.rawValue), \(ConversationRules.storable(content)), \(createdAt), \(stats))
            """, logger: logger)
        var refs: [ImageRef] = []
        for (index, image) in images.enumerated() {
            var ref = image.ref
            if let data = image.data {
                // DO UPDATE (not DO NOTHING) locks an existing row, so a concurrent cleanup cannot remove it under us.
                try await connection.query("""
                    INSERT INTO image (sha256, mime_type, byte_count, data, created_at)
                    VALUES (\(ref.sha256), \(ref.mimeType), \(ref.byteCount), \(data), \(ConversationRules.nowMs()))
                    ON CONFLICT (sha256) DO UPDATE SET sha256 = EXCLUDED.sha256
                    """, logger: logger)
            } else {
                guard let row = try await connection.query("""
                    SELECT mime_type, byte_count FROM image WHERE sha256 = \(ref.sha256) FOR SHARE
                    """, logger: logger).all().first else {
                    throw ConversationRules.missingImage(ref.sha256)
                }
                ref.mimeType = try row.value("mime_type")
                ref.byteCount = try row.value("byte_count")
            }
            try await connection.query("""
                INSERT INTO message_image (message_id, position, sha256) VALUES (\(id), \(index), \(ref.sha256))
                """, logger: logger)
            refs.append(ref)
        }
        return refs
    }

    static func removeUnreferencedImages(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("""
            DELETE FROM image i WHERE NOT EXISTS (SELECT 1 FROM message_image mi WHERE mi.sha256 = i.sha256)
            """, logger: logger)
    }

    static func load(_ connection: PostgresConnection, id: String, logger: Logger) async throws -> Conversation {
        guard let row = try await connection.query("""
            SELECT id, title, created_at, updated_at, parameters FROM conversation WHERE id = \(id)
            """, logger: logger).all().first else {
            throw StoreError.conversationNotFound(id)
        }
        var imagesByMessage: [String: [ImageRef]] = [:]
        for imageRow in try await connection.query("""
            SELECT mi.message_id, i.sha256, i.mime_type, i.byte_count FROM message_image mi
            JOIN image i ON i.sha256 = mi.sha256 JOIN message m ON m.id = mi.message_id
            WHERE m.conversation_id = \(id) ORDER BY mi.message_id, mi.position
            """, logger: logger).all() {
            imagesByMessage[try imageRow.value("message_id"), default: []].append(
                ImageRef(sha256: try imageRow.value("sha256"), mimeType: try imageRow.value("mime_type"),
                         byteCount: try imageRow.value("byte_count")))
        }
        let messages = try await connection.query("""
            SELECT id, role, content, created_at, stats FROM message WHERE conversation_id = \(id) ORDER BY position
            """, logger: logger).all().map { m in
            let messageID = try m.value("id", as: String.self)
            return StoredMessage(id: messageID, role: MessageRole(rawValue: try m.value("role")) ?? .user, content: try m.value("content"),
                                 images: imagesByMessage[messageID] ?? [], createdAt: ConversationRules.date(try m.value("created_at")),
                                 stats: ConversationRules.jsonValue(try m.value("stats", as: String?.self)))
        }
        return Conversation(id: try row.value("id"), title: try row.value("title"), createdAt: ConversationRules.date(try row.value("created_at")),
                            updatedAt: ConversationRules.date(try row.value("updated_at")),
                            parameters: ConversationRules.jsonValue(try row.value("parameters", as: String?.self)), messages: messages)
    }

    static func summary(_ connection: PostgresConnection, id: String, logger: Logger) async throws -> ConversationSummary {
        guard let row = try await connection.query("""
            SELECT c.id, c.title, c.created_at, c.updated_at,
                   (SELECT count(*) FROM message m WHERE m.conversation_id = c.id) AS message_count
            FROM conversation c WHERE c.id = \(id)
            """, logger: logger).all().first else { throw StoreError.conversationNotFound(id) }
        return try summary(row, snippet: nil)
    }

    static func summary(_ row: PostgresRandomAccessRow, snippet: String?) throws -> ConversationSummary {
        ConversationSummary(id: try row.value("id"), title: try row.value("title"), createdAt: ConversationRules.date(try row.value("created_at")),
                            updatedAt: ConversationRules.date(try row.value("updated_at")), messageCount: try row.value("message_count"),
                            snippet: snippet)
    }
}
