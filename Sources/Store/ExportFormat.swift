import Foundation
import JSON

/// The export/import document, `postlens.conversations` version 1 (docs/web.md describes it field by field).
///
/// ```json
/// {"format": "postlens.conversations", "version": 1, "exportedAt": "2026-05-01T10:00:00.000Z",
///  "conversations": [{"id": "…", "title": "…", "createdAt": "…", "updatedAt": "…", "parameters": {…},
///    "messages": [{"id": "…", "role": "user", "content": "…", "createdAt": "…", "stats": null,
///      "images": [{"sha256": "…", "mimeType": "image/png", "byteCount": 123, "dataURL": "data:image/png;base64,…"}]}]}]}
/// ```
/// Images travel inline as data URLs (`dataURL`), or by hash only (`dataURL` absent), in which case the
/// importing store must already hold them.
public struct ExportDocument: Codable, Sendable, Equatable {
    public static let formatName = "postlens.conversations"
    public static let currentVersion = 1

    public var format: String
    public var version: Int
    public var exportedAt: Date
    public var conversations: [ExportedConversation]

    public init(exportedAt: Date = Date(), conversations: [ExportedConversation]) {
        self.format = Self.formatName
        self.version = Self.currentVersion
        // Milliseconds, as the JSON carries them (so a document survives encoding unchanged).
        self.exportedAt = Date(timeIntervalSince1970: (exportedAt.timeIntervalSince1970 * 1000).rounded() / 1000)
        self.conversations = conversations
    }

    /// ISO 8601 dates with milliseconds, sorted keys: what the routes send and accept.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatISODate(date))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parseISODate(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            return date
        }
        return decoder
    }
}

public struct ExportedConversation: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var createdAt: Date
    public var updatedAt: Date
    public var parameters: JSONValue?
    public var messages: [ExportedMessage]

    public init(id: String, title: String, createdAt: Date, updatedAt: Date, parameters: JSONValue?, messages: [ExportedMessage]) {
        self.id = id
        self.title = title
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.parameters = parameters
        self.messages = messages
    }
}

public struct ExportedMessage: Codable, Sendable, Equatable {
    public var id: String?
    public var role: MessageRole
    public var content: String
    public var createdAt: Date
    public var stats: JSONValue?
    public var images: [ExportedImage]

    public init(id: String?, role: MessageRole, content: String, createdAt: Date, stats: JSONValue?, images: [ExportedImage]) {
        self.id = id
        self.role = role
        self.content = content
        self.createdAt = createdAt
        self.stats = stats
        self.images = images
    }
}

public struct ExportedImage: Codable, Sendable, Equatable {
    public var sha256: String?
    public var mimeType: String?
    public var byteCount: Int?
    /// The bytes, `data:<mime>;base64,…`; absent when exported by hash.
    public var dataURL: String?

    public init(sha256: String?, mimeType: String?, byteCount: Int?, dataURL: String?) {
        self.sha256 = sha256
        self.mimeType = mimeType
        self.byteCount = byteCount
        self.dataURL = dataURL
    }
}

nonisolated(unsafe) private let isoFormatters: (withFraction: ISO8601DateFormatter, plain: ISO8601DateFormatter) = {
    let fraction = ISO8601DateFormatter()
    fraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let plain = ISO8601DateFormatter()
    plain.formatOptions = [.withInternetDateTime]
    return (fraction, plain)
}()
private let isoLock = NSLock()

public func formatISODate(_ date: Date) -> String {
    isoLock.withLock { isoFormatters.withFraction.string(from: date) }
}

public func parseISODate(_ text: String) -> Date? {
    isoLock.withLock { isoFormatters.withFraction.date(from: text) ?? isoFormatters.plain.date(from: text) }
}
