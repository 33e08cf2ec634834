import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Server

/// Connections cannot be held (issue 13 §5): an over-limit body is answered and its connection closed, headers and
/// bodies must arrive within the client timeout, and the server answers normally afterwards. On a live server: router
/// tests have no connections.
@Suite(.serialized) struct ConnectionLimitTests {
    func live(_ edit: (inout ServerConfiguration) -> Void, _ test: @escaping @Sendable (Int, any TestClientProtocol) async throws -> Void) async throws {
        let configuration = Fixture.configuration(edit)
        let app = buildApplication(configuration: configuration, engine: try Fixture.engine(), logger: Fixture.logger)
        try await app.test(.live) { client in try await test(try #require(client.port), client) }
    }

    /// The server answers an ordinary request on a fresh connection (the test client's keep-alive connection may have
    /// been closed by the short idle timeout these tests use).
    func expectServesNormally(port: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let connection = try RawConnection(port: port)
        let body = #"{"max_tokens": 2, "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}"#
        await connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        let answer = await connection.read(for: 60).text
        #expect(answer.hasPrefix("HTTP/1.1 200"), "a normal request after the refusal: \(answer.prefix(300))", sourceLocation: sourceLocation)
    }

    @Test func aBodyAnnouncedOverTheLimitIsAnsweredAndTheConnectionClosed() async throws {
        try await live({ $0.maxBodyBytes = 1 << 20 }) { port, client in
            let connection = try RawConnection(port: port)
            // No Expect: 100-continue; the client starts sending its 100 MB at once.
            await connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
            await connection.send(Data(repeating: 0x20, count: 256 << 10))
            let (answer, closed) = await withinSeconds(10, "413 and close") { await connection.read(for: 8) }
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(300))")
            #expect(answer.lowercased().contains("connection: close"))
            #expect(answer.contains(#""code":"request_too_large""#))
            #expect(closed, "the connection stayed open after the 413")
            try await expectServesNormally(port: port)
        }
    }

    @Test func aChunkedBodyThatNeverEndsIsCutOff() async throws {
        try await live({ $0.maxBodyBytes = 1 << 20 }) { port, client in
            let connection = try RawConnection(port: port)
            await connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunk = "10000\r\n" + String(repeating: " ", count: 0x10000) + "\r\n"
            var sent = 0
            let start = Date()
            // Keep sending until the server stops taking it (it answered and closed), for at most 15 s.
            while Date().timeIntervalSince(start) < 15, await connection.send(chunk) { sent += 1 }
            // After the 413 the server reads and drops for a 2 s linger, then closes: the sends stop failing in time.
            #expect(Date().timeIntervalSince(start) < 15, "the server kept reading an endless body (\(sent) chunks)")
            try await expectServesNormally(port: port)
        }
    }

    @Test func headersThatNeverEndAreDropped() async throws {
        try await live({ $0.clientTimeout = .seconds(1) }) { port, client in
            let connection = try RawConnection(port: port)
            await connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            let (_, closed) = await withinSeconds(10, "closing a slow-headers connection") { await connection.read(for: 8) }
            #expect(closed, "a connection that never finished its headers stayed open")
            try await expectServesNormally(port: port)
        }
    }

    @Test func aBodyThatTricklesIsCutOffAtTheTimeout() async throws {
        try await live({ $0.clientTimeout = .seconds(1) }) { port, client in
            let connection = try RawConnection(port: port)
            await connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            // A byte every 300 ms keeps the connection busy but the body never completes in time.
            let start = Date()
            var closed = false
            while !closed, Date().timeIntervalSince(start) < 10 {
                closed = !(await connection.send(" "))
                if !closed { closed = await connection.read(for: 0.3).closed }
            }
            #expect(closed, "a trickling body held its connection for 10 s")
            try await expectServesNormally(port: port)
        }
    }
}
