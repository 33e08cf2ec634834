import Foundation
import Hummingbird
import HummingbirdTesting
import Store
import Testing
@testable import WebUI

/// Every `/api` route and the page's files, through the router (no sockets), on an in-memory store.
@Suite struct WebRoutesTests {
    static let pngDataURL = "data:image/png;base64," + Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3, 4]).base64EncodedString()

    func withApp(maxBodyBytes: Int = 1 << 20, _ test: @Sendable (any TestClientProtocol, SQLiteConversationStore) async throws -> Void) async throws {
        let store = try SQLiteConversationStore.inMemory()
        let router = Router()
        addWebRoutes(to: router, store: store, options: WebUIOptions(maxBodyBytes: maxBodyBytes))
        let app = Application(router: router)
        try await app.test(.router) { client in try await test(client, store) }
    }

    @Test func servesThePageAndItsAssets() async throws {
        try await withApp { client, _ in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(String(buffer: page.body).contains("<script type=\"module\" src=\"/assets/app.js\">"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            let etag = try #require(page.headers[.eTag])
            let cached = try await client.execute(uri: "/", method: .get, headers: [.ifNoneMatch: etag])
            #expect(cached.status == .notModified)

            var total = page.body.readableBytes
            for name in ["app.js", "api.js", "i18n.js", "images.js", "jobs.js", "markdown.js", "presets.js", "structured.js", "app.css"] {
                let asset = try await client.execute(uri: "/assets/\(name)", method: .get)
                #expect(asset.status == .ok, "\(name)")
                #expect(asset.headers[.contentType]?.hasPrefix(name.hasSuffix(".css") ? "text/css" : "text/javascript") == true)
                total += asset.body.readableBytes
            }
            #expect(total < 200 * 1024, "the page weighs \(total) bytes")
            let missing = try await client.execute(uri: "/assets/nope.js", method: .get)
            #expect(missing.status == .notFound)
            let traversal = try await client.execute(uri: "/assets/..%2FWebRoutes.swift", method: .get)
            #expect(traversal.status == .notFound)
        }
    }

    @Test func conversationLifecycle() async throws {
        try await withApp { client, _ in
            let created = try await client.json(.post, "/api/conversations", ["title": "Menu", "parameters": ["temperature": 0.5]])
            #expect(created.status == .created)
            let id = try #require(created.object["id"] as? String)
            #expect(created.object["title"] as? String == "Menu")

            let untitled = try await client.json(.post, "/api/conversations", nil)
            #expect(untitled.status == .created && untitled.object["title"] as? String == "New conversation")

            let user = try await client.json(.post, "/api/conversations/\(id)/messages",
                                             ["role": "user", "content": "What is on the menu?", "images": [Self.pngDataURL]])
            #expect(user.status == .created)
            let images = try #require(user.object["images"] as? [[String: Any]])
            let hash = try #require(images.first?["sha256"] as? String)
            #expect(images.first?["mimeType"] as? String == "image/png")
            let answer = try await client.json(.post, "/api/conversations/\(id)/messages",
                                               ["role": "assistant", "content": "Noodles", "stats": ["completion_tokens": 2, "ttft_ms": 80]])
            #expect(answer.status == .created)
            let again = try await client.json(.post, "/api/conversations/\(id)/messages", ["role": "user", "content": "Again", "images": [hash]])
            #expect(again.status == .created)

            let shown = try await client.json(.get, "/api/conversations/\(id)")
            #expect(shown.status == .ok)
            let messages = try #require(shown.object["messages"] as? [[String: Any]])
            #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
            #expect((messages[1]["stats"] as? [String: Any])?["completion_tokens"] as? Double == 2)
            #expect((shown.object["parameters"] as? [String: Any])?["temperature"] as? Double == 0.5)
            #expect((shown.object["createdAt"] as? String)?.hasSuffix("Z") == true)

            let image = try await client.execute(uri: "/api/images/\(hash)", method: .get)
            #expect(image.status == .ok && image.headers[.contentType] == "image/png" && image.body.readableBytes == 12)

            let truncated = try await client.json(.post, "/api/conversations/\(id)/truncate", ["keep": 2])
            #expect((truncated.object["messages"] as? [Any])?.count == 2)

            let renamed = try await client.json(.patch, "/api/conversations/\(id)", ["title": "Lunch menu"])
            #expect(renamed.status == .ok && renamed.object["title"] as? String == "Lunch menu")
            #expect(renamed.object["messageCount"] as? Int == 2)

            let list = try await client.json(.get, "/api/conversations")
            #expect((list.object["data"] as? [[String: Any]])?.map { $0["id"] as? String } == [id, untitled.object["id"] as? String])
            let search = try await client.json(.get, "/api/conversations?q=noodles")
            let hits = try #require(search.object["data"] as? [[String: Any]])
            #expect(hits.map { $0["id"] as? String } == [id] && hits.first?["snippet"] as? String == "Noodles")
            let searchAlias = try await client.json(.get, "/api/search?q=lunch")
            #expect((searchAlias.object["data"] as? [Any])?.count == 1)
            let limited = try await client.json(.get, "/api/conversations?limit=1")
            #expect((limited.object["data"] as? [Any])?.count == 1)

            let deleted = try await client.json(.delete, "/api/conversations/\(id)")
            #expect(deleted.status == .ok)
            let gone = try await client.json(.get, "/api/conversations/\(id)")
            #expect(gone.status == .notFound)
            let imageGone = try await client.execute(uri: "/api/images/\(hash)", method: .get)
            #expect(imageGone.status == .notFound, "the image no conversation uses is removed")
        }
    }

    @Test func badIdsAndBadBodiesGetClearErrors() async throws {
        try await withApp(maxBodyBytes: 4096) { client, _ in
            for (method, path, body) in [
                (HTTPRequest.Method.get, "/api/conversations/missing", nil as Any?),
                (.patch, "/api/conversations/missing", ["title": "x"]),
                (.delete, "/api/conversations/missing", nil),
                (.post, "/api/conversations/missing/messages", ["role": "user", "content": "x"]),
                (.post, "/api/conversations/missing/truncate", ["keep": 0]),
                (.get, "/api/conversations/missing/export", nil),
                (.get, "/api/images/\(String(repeating: "0", count: 64))", nil),
            ] {
                let response = try await client.json(method, path, body)
                expectError(response, .notFound, path)
            }
            let id = try #require(try await client.json(.post, "/api/conversations", ["title": "A"]).object["id"] as? String)
            let cases: [(HTTPRequest.Method, String, Any?, HTTPResponse.Status, String)] = [
                (.post, "/api/conversations/\(id)/messages", "{not json", .badRequest, "JSON"),
                (.post, "/api/conversations/\(id)/messages", ["content": "no role"], .badRequest, "role"),
                (.post, "/api/conversations/\(id)/messages", ["role": "robot", "content": "x"], .badRequest, "role"),
                (.post, "/api/conversations/\(id)/messages", ["role": "user", "content": "x", "images": ["data:image/png;base64"]], .badRequest, "data URL"),
                (.post, "/api/conversations/\(id)/messages", ["role": "user", "content": "x", "images": ["data:text/plain;base64,aGVsbG8="]], .unprocessableContent, "PNG"),
                (.post, "/api/conversations/\(id)/messages", ["role": "user", "content": "x", "images": [String(repeating: "a", count: 64)]], .unprocessableContent, "not stored"),
                (.post, "/api/conversations/\(id)/messages", ["role": "user", "content": "x", "images": ["nothash"]], .unprocessableContent, "SHA-256"),
                (.post, "/api/conversations/\(id)/messages", ["role": "user", "content": String(repeating: "x", count: 5000)], .contentTooLarge, "larger"),
                (.patch, "/api/conversations/\(id)", [String: Any](), .badRequest, "title"),
                (.patch, "/api/conversations/\(id)", ["title": "  "], .unprocessableContent, "empty"),
                (.post, "/api/conversations/\(id)/truncate", ["keep": -1], .unprocessableContent, "keep"),
                (.post, "/api/conversations/\(id)/truncate", nil, .badRequest, "empty"),
                (.get, "/api/conversations?limit=zero", nil, .badRequest, "limit"),
                (.get, "/api/conversations/\(id)/export?images=maybe", nil, .badRequest, "images"),
                (.post, "/api/conversations", ["title": 5], .badRequest, "title"),
            ]
            for (method, path, body, status, word) in cases {
                let response = try await client.json(method, path, body)
                expectError(response, status, "\(method) \(path) \(String(describing: body).prefix(60))")
                #expect(response.errorMessage.contains(word), "\(path): \(response.errorMessage)")
            }
            let after = try await client.json(.get, "/api/conversations/\(id)")
            #expect((after.object["messages"] as? [Any])?.count == 0, "refused messages leave nothing behind")
        }
    }

    @Test func exportImportRoundTripAndMalformedImports() async throws {
        try await withApp(maxBodyBytes: 1 << 20) { client, store in
            let id = try #require(try await client.json(.post, "/api/conversations", ["title": "Promo 促销"]).object["id"] as? String)
            _ = try await client.json(.post, "/api/conversations/\(id)/messages", ["role": "user", "content": "Extract", "images": [Self.pngDataURL]])
            _ = try await client.json(.post, "/api/conversations/\(id)/messages", ["role": "assistant", "content": "{\"brand\": \"ACME\"}"])

            let export = try await client.execute(uri: "/api/conversations/\(id)/export", method: .get)
            #expect(export.status == .ok)
            #expect(export.headers[.contentDisposition]?.hasPrefix("attachment; filename=\"postlens-") == true)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: export.body)) as? [String: Any])
            #expect(document["format"] as? String == "postlens.conversations" && document["version"] as? Int == 1)
            let exported = try #require((document["conversations"] as? [[String: Any]])?.first)
            let image = try #require(((exported["messages"] as? [[String: Any]])?.first?["images"] as? [[String: Any]])?.first)
            #expect(image["dataURL"] as? String == Self.pngDataURL)

            let byHash = try await client.json(.get, "/api/conversations/\(id)/export?images=hash")
            let hashImage = ((byHash.array("conversations").first?["messages"] as? [[String: Any]])?.first?["images"] as? [[String: Any]])?.first
            #expect(hashImage?["dataURL"] == nil && hashImage?["sha256"] is String)
            let all = try await client.json(.get, "/api/export")
            #expect(all.array("conversations").count == 1)

            let imported = try await client.execute(uri: "/api/import", method: .post, body: export.body)
            #expect(imported.status == .created)
            let newID = try #require(((try JSONSerialization.jsonObject(with: Data(buffer: imported.body)) as? [String: Any])?["data"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(newID != id)
            var original = try await store.conversation(id: id)
            var copy = try await store.conversation(id: newID)
            original.id = ""
            copy.id = ""
            for i in original.messages.indices { original.messages[i].id = ""; copy.messages[i].id = "" }
            #expect(copy == original)

            let before = try await store.listConversations().count
            let bad: [(Any, HTTPResponse.Status, String)] = [
                ("{\"format\": ", .badRequest, "JSON"),
                (["format": "postlens.conversations", "version": 1], .badRequest, "missing field"),
                (["format": "postlens.conversations", "version": 2, "exportedAt": "2026-01-01T00:00:00Z", "conversations": []], .unprocessableContent, "version"),
                (["format": "other", "version": 1, "exportedAt": "2026-01-01T00:00:00Z", "conversations": []], .unprocessableContent, "format"),
                (["format": "postlens.conversations", "version": 1, "exportedAt": "yesterday", "conversations": []], .badRequest, "date"),
                (Self.document(title: "ok", images: [["dataURL": "data:image/png;base64,!!!"]]), .unprocessableContent, "data URL"),
                (Self.document(title: "ok", images: [["dataURL": "data:text/plain;base64,aGVsbG8="]]), .unprocessableContent, "PNG"),
                (Self.document(title: "ok", images: [["sha256": String(repeating: "b", count: 64)]]), .unprocessableContent, "not stored"),
                (Self.document(title: "ok", images: [[:]]), .unprocessableContent, "neither"),
                (Self.document(title: "", images: []), .unprocessableContent, "title"),
                (Self.document(title: "ok", images: [], role: "robot"), .badRequest, "role"),
            ]
            for (body, status, word) in bad {
                let response = try await client.json(.post, "/api/import", body)
                expectError(response, status, "\(String(describing: body).prefix(80))")
                #expect(response.errorMessage.contains(word), "\(response.errorMessage)")
                let count = try await store.listConversations().count
                #expect(count == before, "nothing half-imported")
            }
        }
    }

    /// An export document with one good conversation first and one whose only message has `images`.
    static func document(title: String, images: [[String: Any]], role: String = "user") -> [String: Any] {
        let good: [String: Any] = ["id": "good", "title": "Good", "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
                                   "messages": [["role": "user", "content": "hi", "createdAt": "2026-01-01T00:00:00Z", "images": []]]]
        let bad: [String: Any] = ["id": "bad", "title": title, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
                                  "messages": [["role": role, "content": "x", "createdAt": "2026-01-01T00:00:00Z", "images": images]]]
        return ["format": "postlens.conversations", "version": 1, "exportedAt": "2026-01-01T00:00:00Z", "conversations": [good, bad]]
    }
}

// MARK: - Helpers

struct JSONResult {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let raw: String
    let value: Any?
    var object: [String: Any] { value as? [String: Any] ?? [:] }
    func array(_ key: String) -> [[String: Any]] { object[key] as? [[String: Any]] ?? [] }
    var errorMessage: String { (object["error"] as? [String: Any])?["message"] as? String ?? "" }
}

extension TestClientProtocol {
    func json(_ method: HTTPRequest.Method, _ uri: String, _ body: Any? = nil) async throws -> JSONResult {
        var buffer: ByteBuffer?
        if let text = body as? String {
            buffer = ByteBuffer(string: text)
        } else if let body {
            buffer = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
        }
        let response = try await execute(uri: uri, method: method, headers: [.contentType: "application/json"], body: buffer)
        let data = Data(buffer: response.body)
        return JSONResult(status: response.status, headers: response.headers, raw: String(decoding: data, as: UTF8.self),
                          value: try? JSONSerialization.jsonObject(with: data))
    }
}

func expectError(_ response: JSONResult, _ status: HTTPResponse.Status, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "\(context): \(response.raw)", sourceLocation: sourceLocation)
    let error = response.object["error"] as? [String: Any]
    #expect(error?["message"] is String, "\(context): \(response.raw)", sourceLocation: sourceLocation)
    #expect(error?["type"] is String, sourceLocation: sourceLocation)
    #expect(error?.keys.contains("param") == true && error?.keys.contains("code") == true, sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
}

extension Data {
    init(buffer: ByteBuffer) { self.init(buffer.readableBytesView) }
}
