import Foundation
import JSON

/// Generation parameters and per-answer statistics are stored as the page gives them (the JSON module's
/// `JSONValue`), so that new fields need no schema change.
extension JSONValue {
    /// Compact JSON text with sorted keys (what the database stores).
    func jsonText() throws -> String { sortedText }

    static func parse(_ text: String?) -> JSONValue? {
        guard let text else { return nil }
        return try? JSONParser.parse(text)
    }
}

/// Who wrote a message.
public enum MessageRole: String, Codable, Sendable, CaseIterable {
    case system, user, assistant
}

/// One row of the sidebar.
public struct ConversationSummary: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var createdAt: Date
    public var updatedAt: Date
    public var messageCount: Int
    /// For a search: a short excerpt of the first message that matched (nil when only the title matched).
    public var snippet: String?

    public init(id: String, title: String, createdAt: Date, updatedAt: Date, messageCount: Int, snippet: String? = nil) {
        self.id = id
        self.title = title
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.messageCount = messageCount
        self.snippet = snippet
    }

    enum CodingKeys: String, CodingKey { case id, title, createdAt, updatedAt, messageCount, snippet }

    /// `snippet` is written as `null` when absent (every key always present).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(title, forKey: .title)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(messageCount, forKey: .messageCount)
        try c.encode(snippet, forKey: .snippet)
    }
}

/// An image attached to a message: stored once, by the SHA-256 of its bytes.
public struct ImageRef: Codable, Sendable, Equatable, Hashable {
    public var sha256: String
    public var mimeType: String
    public var byteCount: Int

    public init(sha256: String, mimeType: String, byteCount: Int) {
        self.sha256 = sha256
        self.mimeType = mimeType
        self.byteCount = byteCount
    }
}

/// A stored message, in conversation order.
public struct StoredMessage: Codable, Sendable, Equatable {
    public var id: String
    public var role: MessageRole
    public var content: String
    public var images: [ImageRef]
    public var createdAt: Date
    /// Per-answer numbers the page shows (tokens, time to first token, tokens/s, cache hit, stopped, …).
    public var stats: JSONValue?

    public init(id: String, role: MessageRole, content: String, images: [ImageRef], createdAt: Date, stats: JSONValue?) {
        self.id = id
        self.role = role
        self.content = content
        self.images = images
        self.createdAt = createdAt
        self.stats = stats
    }

    enum CodingKeys: String, CodingKey { case id, role, content, images, createdAt, stats }

    /// `stats` is written as `null` when absent.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(role, forKey: .role)
        try c.encode(content, forKey: .content)
        try c.encode(images, forKey: .images)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(stats, forKey: .stats)
    }
}

/// A whole conversation.
public struct Conversation: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Generation settings the conversation was held with (temperature, max tokens, system prompt, …).
    public var parameters: JSONValue?
    public var messages: [StoredMessage]

    public init(id: String, title: String, createdAt: Date, updatedAt: Date, parameters: JSONValue?, messages: [StoredMessage]) {
        self.id = id
        self.title = title
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.parameters = parameters
        self.messages = messages
    }

    enum CodingKeys: String, CodingKey { case id, title, createdAt, updatedAt, parameters, messages }

    /// `parameters` is written as `null` when absent.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(title, forKey: .title)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(messages, forKey: .messages)
    }
}

/// An image to attach: new bytes, or one the store already holds.
public enum ImageInput: Sendable, Equatable {
    case bytes(Data)
    case stored(sha256: String)
}

/// A message to append.
public struct NewMessage: Sendable {
    public var role: MessageRole
    public var content: String
    public var images: [ImageInput]
    public var stats: JSONValue?
    public var createdAt: Date?

    public init(role: MessageRole, content: String, images: [ImageInput] = [], stats: JSONValue? = nil, createdAt: Date? = nil) {
        self.role = role
        self.content = content
        self.images = images
        self.stats = stats
        self.createdAt = createdAt
    }
}

/// Image bytes as stored.
public struct StoredImage: Sendable, Equatable {
    public var ref: ImageRef
    public var data: Data

    public init(ref: ImageRef, data: Data) {
        self.ref = ref
        self.data = data
    }
}

/// Why a store call failed: the web routes map these to 404 and 422.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    case conversationNotFound(String)
    case imageNotFound(String)
    case jobNotFound(String)
    case invalid(String)
    /// The database could not be reached or answered with an error; says what to check.
    case unavailable(String)

    public var description: String {
        switch self {
        case .conversationNotFound(let id): return "no conversation with id '\(id)'"
        case .imageNotFound(let hash): return "no stored image with sha256 '\(hash)'"
        case .jobNotFound(let id): return "no job with id '\(id)'"
        case .unavailable(let reason): return reason
        case .invalid(let reason): return reason
        }
    }
}

/// Recognizes the image formats the engine decodes from their first bytes; nil for anything else.
public func sniffImageMIMEType(_ data: Data) -> String? {
    let bytes = [UInt8](data.prefix(12))
    if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
    if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
    if bytes.starts(with: Array("GIF8".utf8)) { return "image/gif" }
    if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
    return nil
}

/// `data:image/png;base64,....` → bytes; nil when it is not a base64 data URL.
public func decodeDataURL(_ url: String) -> Data? {
    guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
    let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
    guard header.hasSuffix(";base64") else { return nil }
    return Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters)
}

/// Bytes → `data:<mime>;base64,...`.
public func encodeDataURL(_ data: Data, mimeType: String) -> String {
    "data:\(mimeType);base64,\(data.base64EncodedString())"
}

/// Text as the store keeps it: NUL characters become U+FFFD. SQLite keeps a NUL inside text, but reading a text
/// column back ends at the first one, so a model answer containing a NUL token came back cut short after a
/// reload. Browsers already show a NUL as U+FFFD, so the conversation reads the same before and after.
func storableText(_ text: String) -> String {
    text.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
}
