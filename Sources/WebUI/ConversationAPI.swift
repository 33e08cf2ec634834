import Foundation
import JSON
import Hummingbird
import Store

/// The JSON API behind the page (docs/api-conversations.md). Errors have OpenAI's shape:
/// `{"error": {"message", "type", "param", "code"}}`.
struct ConversationAPI<Context: RequestContext>: Sendable {
    let store: any ConversationStore
    let maxBodyBytes: Int

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        // Refusals are returned as responses, not thrown, so the server's error middleware cannot remap them.
        func guarded(_ handler: @escaping @Sendable (Request, Context) async throws -> Response)
            -> @Sendable (Request, Context) async throws -> Response {
            { request, context in
                do {
                    return try await handler(request, context)
                } catch let error as WebAPIError {
                    return try error.response(from: request, context: context)
                }
            }
        }
        routes.get("/conversations", use: guarded(list))
        routes.post("/conversations", use: guarded(create))
        routes.get("/conversations/{id}", use: guarded(show))
        routes.patch("/conversations/{id}", use: guarded(update))
        routes.delete("/conversations/{id}", use: guarded(delete))
        routes.post("/conversations/{id}/messages", use: guarded(appendMessage))
        routes.post("/conversations/{id}/truncate", use: guarded(truncate))
        routes.get("/conversations/{id}/export", use: guarded(exportOne))
        routes.get("/export", use: guarded(exportAll))
        routes.post("/import", use: guarded(importDocument))
        routes.get("/images/{sha256}", use: guarded(image))
        routes.get("/search", use: guarded(list))
        return routes
    }

    // MARK: Bodies

    struct CreateBody: Decodable {
        var title: String?
        var parameters: JSONValue?
    }

    struct UpdateBody: Decodable {
        var title: String?
        var parameters: JSONValue?
    }

    struct MessageBody: Decodable {
        var role: MessageRole
        var content: String
        /// Data URLs (`data:image/png;base64,…`) or SHA-256 digests of images already stored.
        var images: [String]?
        var stats: JSONValue?
    }

    struct TruncateBody: Decodable {
        var keep: Int
    }

    struct ListResponse: Encodable {
        var object = "list"
        var data: [ConversationSummary]
    }

    // MARK: Handlers

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters.get("q")
        var limit = 500
        if let text = request.uri.queryParameters.get("limit") {
            guard let value = Int(text), value > 0 else { throw WebAPIError.badRequest("limit must be a positive integer", param: "limit") }
            limit = min(value, 5000)
        }
        return try json(ListResponse(data: try await mapped { try await store.listConversations(matching: query, limit: limit) }))
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let body = try await decodeBody(CreateBody.self, request, allowEmpty: true) ?? CreateBody()
        let title = (body.title?.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { $0.isEmpty ? nil : $0 } ?? "New conversation"
        let conversation = try await mapped { try await store.createConversation(title: title, parameters: body.parameters) }
        return try json(conversation, status: .created)
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        return try json(try await mapped { try await store.conversation(id: id) })
    }

    @Sendable func update(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let body = try await decodeBody(UpdateBody.self, request, allowEmpty: false) else {
            throw WebAPIError.badRequest("send a JSON object with 'title' and/or 'parameters'")
        }
        guard body.title != nil || body.parameters != nil else {
            throw WebAPIError.badRequest("send a JSON object with 'title' and/or 'parameters'")
        }
        return try json(try await mapped { try await store.updateConversation(id: id, title: body.title, parameters: body.parameters) })
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        try await mapped { try await store.deleteConversation(id: id) }
        return try json(["id": id, "deleted": "true"])
    }

    @Sendable func appendMessage(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let body = try await decodeBody(MessageBody.self, request, allowEmpty: false) else {
            throw WebAPIError.badRequest("send a JSON object with 'role' and 'content'")
        }
        var images: [ImageInput] = []
        for (index, item) in (body.images ?? []).enumerated() {
            if item.hasPrefix("data:") {
                guard let data = decodeDataURL(item) else {
                    throw WebAPIError.badRequest("images[\(index)] is not a base64 data URL", param: "images")
                }
                images.append(.bytes(data))
            } else {
                images.append(.stored(sha256: item))
            }
        }
        let message = NewMessage(role: body.role, content: body.content, images: images, stats: body.stats)
        return try json(try await mapped { try await store.appendMessage(to: id, message) }, status: .created)
    }

    @Sendable func truncate(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let body = try await decodeBody(TruncateBody.self, request, allowEmpty: false) else {
            throw WebAPIError.badRequest("send {\"keep\": N}")
        }
        return try json(try await mapped { try await store.truncateMessages(of: id, keeping: body.keep) })
    }

    @Sendable func exportOne(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        let inline = try inlineImages(request)
        let document = try await mapped { try await store.export(ids: [id], inlineImages: inline) }
        let title = document.conversations.first?.title ?? id
        return try json(document, download: "postlens-\(safeFileName(title)).json")
    }

    @Sendable func exportAll(_ request: Request, context: Context) async throws -> Response {
        let inline = try inlineImages(request)
        let document = try await mapped { try await store.export(ids: nil, inlineImages: inline) }
        return try json(document, download: "postlens-conversations.json")
    }

    @Sendable func importDocument(_ request: Request, context: Context) async throws -> Response {
        guard let document = try await decodeBody(ExportDocument.self, request, allowEmpty: false) else {
            throw WebAPIError.badRequest("send an export document (format 'postlens.conversations', version 1)")
        }
        let imported = try await mapped { try await store.importDocument(document) }
        return try json(ListResponse(data: imported), status: .created)
    }

    @Sendable func image(_ request: Request, context: Context) async throws -> Response {
        let hash = try context.parameters.require("sha256")
        let image = try await mapped { try await store.image(sha256: hash) }
        return Response(status: .ok,
                        headers: [.contentType: image.ref.mimeType, .cacheControl: "private, max-age=31536000, immutable",
                                  .eTag: "\"\(image.ref.sha256)\""],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: image.data)))
    }

    // MARK: Helpers

    private func inlineImages(_ request: Request) throws -> Bool {
        switch request.uri.queryParameters.get("images") ?? "inline" {
        case "inline": return true
        case "hash": return false
        case let other: throw WebAPIError.badRequest("images must be 'inline' or 'hash', not '\(other)'", param: "images")
        }
    }

    /// Reads and decodes a JSON body; nil for an empty body when `allowEmpty`.
    private func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request, allowEmpty: Bool) async throws -> T? {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            throw WebAPIError(status: .contentTooLarge, message: "request body is larger than \(maxBodyBytes) bytes",
                              type: "invalid_request_error", code: "body_too_large")
        }
        let data = Data(buffer.readableBytesView)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            if allowEmpty { return nil }
            throw WebAPIError.badRequest("request body is empty; send JSON")
        }
        do {
            return try ExportDocument.decoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw WebAPIError.badRequest("invalid JSON body: \(describe(error))")
        } catch {
            throw WebAPIError.badRequest("invalid JSON body: \(error.localizedDescription)")
        }
    }

    /// Runs a store call, turning store errors into 404 / 422 responses.
    @discardableResult
    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            switch error {
            case .conversationNotFound, .imageNotFound, .jobNotFound:
                throw WebAPIError(status: .notFound, message: error.description, type: "not_found_error", code: "not_found")
            case .invalid(let reason):
                throw WebAPIError(status: .unprocessableContent, message: reason, type: "invalid_request_error", code: "invalid_value")
            case .unavailable(let reason):
                throw WebAPIError(status: .serviceUnavailable, message: reason, type: "server_error", code: "database_unavailable")
            }
        }
    }

    private func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, download: String? = nil) throws -> Response {
        let data = try ExportDocument.encoder().encode(value)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"]
        if let download { headers[.contentDisposition] = "attachment; filename=\"\(download)\"" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A refusal from the `/api` routes, rendered in OpenAI's error shape whatever middleware is installed.
struct WebAPIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    let type: String
    let code: String
    var param: String? = nil

    static func badRequest(_ message: String, param: String? = nil) -> WebAPIError {
        WebAPIError(status: .badRequest, message: message, type: "invalid_request_error", code: "bad_request", param: param)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(ErrorBody(error: .init(message: message, type: type, param: param, code: code)))
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

private struct ErrorBody: Encodable {
    struct Inner: Encodable {
        let message: String
        let type: String
        let param: String?
        let code: String
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(param, forKey: .param)  // always present, null when none
            try c.encode(code, forKey: .code)
        }
        enum CodingKeys: String, CodingKey { case message, type, param, code }
    }
    let error: Inner
}

private func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return keys.isEmpty ? "" : " at \(keys.hasPrefix(".") ? String(keys.dropFirst()) : keys)"
    }
    switch error {
    case .dataCorrupted(let context):
        return context.codingPath.isEmpty ? "not valid JSON" : "bad value\(path(context)): \(context.debugDescription)"
    case .keyNotFound(let key, let context): return "missing field '\(key.stringValue)'\(path(context))"
    case .typeMismatch(_, let context): return "wrong type\(path(context)): \(context.debugDescription)"
    case .valueNotFound(_, let context): return "missing value\(path(context))"
    @unknown default: return "\(error)"
    }
}

private func safeFileName(_ title: String) -> String {
    let allowed = title.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "-" }
    let name = String(allowed).split(separator: "-").joined(separator: "-").lowercased()
    return name.isEmpty ? "conversation" : String(name.prefix(60))
}
