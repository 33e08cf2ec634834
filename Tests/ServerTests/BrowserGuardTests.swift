import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Server
import Store

/// The history must not be open to any web page (issue 13 §4): Host and Origin checks, JSON-only content types on
/// state-changing routes, CORS only where configured.
@Suite struct BrowserGuardTests {
    let policy = BrowserPolicy(configuration: Fixture.configuration())

    @Test func loopbackHostsServeThePageAndOthersAreRefused() {
        for host in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST", "127.0.0.1"] {
            #expect(policy.refusal(method: .get, path: "/api/conversations", host: host, origin: nil, contentType: nil, hasBody: false) == nil, "\(host)")
        }
        let rebound = policy.refusal(method: .get, path: "/api/export", host: "attacker.example:8080", origin: nil, contentType: nil, hasBody: false)
        #expect(rebound?.status == .forbidden && rebound?.code == "host_not_allowed")
        #expect(policy.refusal(method: .get, path: "/", host: "attacker.example", origin: nil, contentType: nil, hasBody: false)?.status == .forbidden)
        // The OpenAI API keeps answering SDK clients under any name (they send no Origin).
        #expect(policy.refusal(method: .post, path: "/v1/chat/completions", host: "gpu-box.lan:8080", origin: nil,
                               contentType: "application/json", hasBody: true) == nil)
    }

    @Test func configuredHostsAndWildcards() {
        let named = BrowserPolicy(configuration: Fixture.configuration { $0.allowedHosts = ["Box.LAN"]; $0.host = "192.168.1.5" })
        #expect(named.hostAllowed("box.lan:8080") && named.hostAllowed("192.168.1.5:8080") && !named.hostAllowed("other.lan"))
        let wildcardBind = BrowserPolicy(configuration: Fixture.configuration { $0.host = "0.0.0.0" })
        #expect(!wildcardBind.hostAllowed("0.0.0.0") && !wildcardBind.hostAllowed("box.lan"))
        let any = BrowserPolicy(configuration: Fixture.configuration { $0.allowedHosts = ["*"] })
        #expect(any.hostAllowed("anything.example"))
    }

    @Test func foreignOriginsCannotChangeState() {
        let evil = policy.refusal(method: .post, path: "/v1/chat/completions", host: "127.0.0.1:8080", origin: "http://evil.example",
                                  contentType: "application/json", hasBody: true)
        #expect(evil?.status == .forbidden && evil?.code == "origin_not_allowed")
        #expect(policy.refusal(method: .delete, path: "/api/conversations/x", host: "127.0.0.1:8080", origin: "null",
                               contentType: nil, hasBody: false)?.status == .forbidden)
        // The page itself, on its own origin.
        #expect(policy.refusal(method: .post, path: "/api/conversations", host: "127.0.0.1:8080", origin: "http://127.0.0.1:8080",
                               contentType: "application/json", hasBody: true) == nil)
        let cors = BrowserPolicy(configuration: Fixture.configuration { $0.corsOrigins = ["https://app.example.com"] })
        #expect(cors.refusal(method: .post, path: "/v1/chat/completions", host: "127.0.0.1:8080", origin: "https://app.example.com",
                             contentType: "application/json", hasBody: true) == nil)
    }

    @Test func stateChangingBodiesMustBeJSON() {
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", nil] {
            let refusal = policy.refusal(method: .post, path: "/api/import", host: "127.0.0.1", origin: nil, contentType: type, hasBody: true)
            #expect(refusal?.status == .unsupportedMediaType && refusal?.code == "unsupported_media_type", "\(type ?? "none")")
        }
        #expect(policy.refusal(method: .post, path: "/v1/chat/completions", host: nil, origin: nil,
                               contentType: "application/json; charset=utf-8", hasBody: true) == nil)
        #expect(policy.refusal(method: .post, path: "/v1/batches", host: nil, origin: nil, contentType: "application/x-ndjson", hasBody: true) == nil)
        #expect(policy.refusal(method: .post, path: "/v1/chat/completions", host: nil, origin: nil, contentType: "application/x-ndjson", hasBody: true) != nil)
        // No body, no content type needed (cancel, delete).
        #expect(policy.refusal(method: .post, path: "/v1/batches/b/cancel", host: nil, origin: nil, contentType: nil, hasBody: false) == nil)
    }

    @Test func refusalsThroughTheRouterHaveOpenAIsShape() async throws {
        try await runApp { client in
            let json = Data(#"{"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}"#.utf8)
            let foreign = try await client.execute(uri: "/v1/chat/completions", method: .post,
                                                   headers: [.contentType: "application/json", .origin: "http://evil.example"],
                                                   body: ByteBuffer(bytes: json)) { JSONResponse($0) }
            expectOpenAIError(foreign, .forbidden, code: "origin_not_allowed")
            let plain = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "text/plain"],
                                                 body: ByteBuffer(bytes: json)) { JSONResponse($0) }
            expectOpenAIError(plain, .unsupportedMediaType, code: "unsupported_media_type")
            // CORS is off: a preflight gets no Access-Control headers.
            let preflight = try await client.execute(uri: "/v1/chat/completions", method: .options,
                                                     headers: [.origin: "http://evil.example", .accessControlRequestMethod: "POST"]) { $0 }
            #expect(preflight.headers[.accessControlAllowOrigin] == nil)
            try await expectServesNormally(client)
        }
    }

    @Test func configuredOriginsGetCORS() async throws {
        try await runApp(Fixture.configuration { $0.corsOrigins = ["https://app.example.com"] }) { client in
            let preflight = try await client.execute(uri: "/v1/chat/completions", method: .options,
                                                     headers: [.origin: "https://app.example.com", .accessControlRequestMethod: "POST"]) { $0 }
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
            let answer = try await client.post(json: ["max_tokens": 1, "messages": [user("hi")]], headers: [.origin: "https://app.example.com"])
            #expect(answer.status == .ok && answer.headers[.accessControlAllowOrigin] == "https://app.example.com")
        }
    }

    @Test func aReboundHostCannotReadTheHistoryOnALiveServer() async throws {
        let app = buildApplication(configuration: Fixture.configuration(), host: ModelHost(modelID: "tiny", engine: try Fixture.engine()),
                                   store: try SQLiteConversationStore.inMemory(), logger: Fixture.logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            for (host, expected) in [("attacker.example:\(port)", "403"), ("localhost:\(port)", "200")] {
                let connection = try RawConnection(port: port)
                await connection.send("GET /api/export HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
                let answer = await connection.read(for: 10, until: "\r\n\r\n").text
                #expect(answer.hasPrefix("HTTP/1.1 \(expected)"), "Host \(host): \(answer.prefix(200))")
            }
        }
    }
}
