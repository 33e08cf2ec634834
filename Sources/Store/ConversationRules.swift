import Foundation
import JSON

/// What every `ConversationStore` checks and prepares the same way, whatever database is behind it: titles, search
/// patterns and snippets, images (sniffed, hashed) and import documents (decoded and verified before any write).
public enum ConversationRules {
    /// A trimmed, non-empty title of at most 500 characters, NUL-free; `context` prefixes the error (`conversations[2]`).
    public static func validTitle(_ title: String, context: String? = nil) throws -> String {
        let trimmed = title.trimmingCharacters(in: .whitespacesAndNewlines)
        let prefix = context.map { "\($0): " } ?? ""
        guard !trimmed.isEmpty else { throw StoreError.invalid("\(prefix)title must not be empty") }
        guard trimmed.count <= 500 else { throw StoreError.invalid("\(prefix)title is longer than 500 characters") }
        return storableText(trimmed)
    }

    /// Text as stores keep it (NUL → U+FFFD; see `storableText`).
    public static func storable(_ text: String) -> String { storableText(text) }

    /// `text` for a `LIKE … ESCAPE '\'` pattern: `%`, `_` and `\` match literally.
    public static func escapeLike(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// About 120 characters of `text` around the first (case-insensitive) occurrence of `query`.
    public static func snippet(of text: String, around query: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        guard let range = flat.range(of: query, options: .caseInsensitive) else { return String(flat.prefix(120)) }
        let start = flat.index(range.lowerBound, offsetBy: -40, limitedBy: flat.startIndex) ?? flat.startIndex
        let end = flat.index(range.upperBound, offsetBy: 80, limitedBy: flat.endIndex) ?? flat.endIndex
        return (start > flat.startIndex ? "…" : "") + flat[start..<end] + (end < flat.endIndex ? "…" : "")
    }

    /// An image ready to store: new bytes with their reference, or a hash the store must already hold.
    public struct PreparedImage: Sendable {
        public var ref: ImageRef
        /// nil: must already be stored.
        public var data: Data?
    }

    public static func prepareImages(_ inputs: [ImageInput]) throws -> [PreparedImage] {
        try inputs.map { input in
            switch input {
            case .bytes(let data):
                guard let mime = sniffImageMIMEType(data) else {
                    throw StoreError.invalid("an image is not PNG, JPEG, WebP or GIF")
                }
                return PreparedImage(ref: ImageRef(sha256: sha256Hex(data), mimeType: mime, byteCount: data.count), data: data)
            case .stored(let hash):
                let hash = hash.lowercased()
                guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else { throw StoreError.invalid("'\(hash)' is not a SHA-256 hex digest") }
                return PreparedImage(ref: ImageRef(sha256: hash, mimeType: "", byteCount: 0), data: nil)
            }
        }
    }

    /// The error for an image named by hash that the store does not hold.
    public static func missingImage(_ hash: String) -> StoreError {
        .invalid("image \(hash) is referenced by hash but not stored here (export with images inline)")
    }

    /// One conversation of an import document, checked and with its images decoded.
    public struct PreparedConversation: Sendable {
        public var source: ExportedConversation
        public var parameters: String?
        public var messages: [PreparedMessage]
    }

    public struct PreparedMessage: Sendable {
        public var message: ExportedMessage
        public var stats: String?
        public var images: [PreparedImage]
    }

    /// Checks the whole document (format, version, titles, images and their hashes) before anything is written, so an
    /// import is all or nothing. Throws `StoreError.invalid` naming the first problem.
    public static func prepareImport(_ document: ExportDocument) throws -> [PreparedConversation] {
        guard document.format == ExportDocument.formatName else {
            throw StoreError.invalid("format must be '\(ExportDocument.formatName)', not '\(document.format)'")
        }
        guard document.version == ExportDocument.currentVersion else {
            throw StoreError.invalid("unsupported export version \(document.version) (this server reads version \(ExportDocument.currentVersion))")
        }
        var prepared: [PreparedConversation] = []
        for (c, conversation) in document.conversations.enumerated() {
            let place = "conversations[\(c)]"
            _ = try validTitle(conversation.title, context: place)
            var messages: [PreparedMessage] = []
            for (m, message) in conversation.messages.enumerated() {
                var images: [ImageInput] = []
                for (i, image) in message.images.enumerated() {
                    let path = "\(place).messages[\(m)].images[\(i)]"
                    if let url = image.dataURL {
                        guard let data = decodeDataURL(url) else { throw StoreError.invalid("\(path).dataURL is not a base64 data URL") }
                        if let hash = image.sha256, hash.lowercased() != sha256Hex(data) {
                            throw StoreError.invalid("\(path): sha256 does not match the image bytes")
                        }
                        images.append(.bytes(data))
                    } else if let hash = image.sha256 {
                        images.append(.stored(sha256: hash))
                    } else {
                        throw StoreError.invalid("\(path) has neither dataURL nor sha256")
                    }
                }
                let prepared: [PreparedImage]
                do {
                    prepared = try prepareImages(images)
                } catch StoreError.invalid(let reason) {
                    throw StoreError.invalid("\(place).messages[\(m)]: \(reason)")
                }
                messages.append(PreparedMessage(message: message, stats: try message.stats.map { try $0.jsonText() }, images: prepared))
            }
            prepared.append(PreparedConversation(source: conversation, parameters: try conversation.parameters.map { try $0.jsonText() },
                                                 messages: messages))
        }
        return prepared
    }

    /// An imported id is kept when it is free and reasonable, replaced by a new one otherwise.
    public static func importedID(_ proposed: String?, isTaken: Bool) -> String {
        let id = (proposed ?? "").trimmingCharacters(in: .whitespaces)
        if id.isEmpty || id.count > 200 || isTaken { return newID() }
        return id
    }

    /// JSON text as stores keep it (sorted keys), and back.
    public static func jsonText(_ value: JSONValue?) throws -> String? { try value.map { try $0.jsonText() } }
    public static func jsonValue(_ text: String?) -> JSONValue? { JSONValue.parse(text) }

    public static func newID() -> String { UUID().uuidString.lowercased() }

    /// Milliseconds since 1970, as stores keep times.
    public static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    public static func nowMs() -> Int64 { ms(Date()) }
    public static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
