import Foundation
import JSON

/// Conversations, their messages and their images, as the web UI keeps them.
///
/// Every call is one transaction: a failure leaves the store as it was. Ids are opaque strings (UUIDs when the
/// store makes them). Deleting or truncating removes the images no message refers to any more.
public protocol ConversationStore: Sendable {
    /// Newest first. With a query: conversations whose title or any message text contains it (case-insensitive
    /// for ASCII), each with a snippet of the first matching message.
    func listConversations(matching query: String?, limit: Int) async throws -> [ConversationSummary]
    func createConversation(title: String, parameters: JSONValue?) async throws -> Conversation
    /// Throws `StoreError.conversationNotFound`.
    func conversation(id: String) async throws -> Conversation
    /// Changes the title and/or the parameters (nil leaves a field as it is); returns the summary.
    func updateConversation(id: String, title: String?, parameters: JSONValue?) async throws -> ConversationSummary
    func deleteConversation(id: String) async throws
    /// Appends at the end; images are stored once by SHA-256 (bytes must be PNG, JPEG, WebP or GIF).
    func appendMessage(to conversationID: String, _ message: NewMessage) async throws -> StoredMessage
    /// Keeps the first `count` messages and deletes the rest (regenerate, edit and resend).
    func truncateMessages(of conversationID: String, keeping count: Int) async throws -> Conversation
    /// Throws `StoreError.imageNotFound`.
    func image(sha256: String) async throws -> StoredImage
    /// The given conversations (all when `ids` is nil), images inline as data URLs or by hash only.
    func export(ids: [String]?, inlineImages: Bool) async throws -> ExportDocument
    /// Imports every conversation of the document in one transaction (all or nothing). Ids are kept when free,
    /// replaced otherwise. Throws `StoreError.invalid` naming the first problem.
    func importDocument(_ document: ExportDocument) async throws -> [ConversationSummary]
}

extension ConversationStore {
    public func listConversations(matching query: String? = nil) async throws -> [ConversationSummary] {
        try await listConversations(matching: query, limit: 500)
    }

    public func renameConversation(id: String, title: String) async throws -> ConversationSummary {
        try await updateConversation(id: id, title: title, parameters: nil)
    }
}
