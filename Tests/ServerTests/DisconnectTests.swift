import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// A client that goes away cancels its request's generation (`ConnectionWatchers`), on a live server: router tests have
/// no connection to close. tests/live/test_disconnect.py does the same against `postlens serve` and checks keep-alive.
@Suite struct DisconnectTests {
    /// Sends one delta, then nothing until its stream ends: a generation that only a cancellation ends.
    final class HangingEngine: ChatEngine, Sendable {
        let defaultParameters = GenerationParameters()
        let preprocessor = PreprocessorConfiguration.qwen3VL
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let (cancelled, cancelledContinuation) = AsyncStream<Void>.makeStream()
        private let running = Mutex<[AsyncThrowingStream<GenerationEvent, Error>.Continuation]>([])

        func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
            AsyncThrowingStream { continuation in
                continuation.onTermination = { termination in
                    if case .cancelled = termination { self.cancelledContinuation.yield() }
                }
                running.withLock { $0.append(continuation) }
                continuation.yield(.delta(text: "Once", tokenIDs: [1], logprobs: []))
                startedContinuation.yield()
            }
        }

        /// Ends the generations still running, so that a failed test does not leave the server waiting on them.
        func finishAll() {
            for continuation in running.withLock({ $0 }) { continuation.finish(throwing: ServerError.shuttingDown) }
        }
    }

    /// Whether `stream` yields within `limit`.
    func yields(_ stream: AsyncStream<Void>, within limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in stream { return true }
                return false
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    func abandon(_ path: String, body: [String: Any], expectedRoute: String) async throws {
        let engine = HangingEngine()
        let app = buildApplication(configuration: Fixture.configuration(), host: ModelHost(modelID: "tiny", engine: engine),
                                   logger: Fixture.logger)
        let bodyData = try JSONSerialization.data(withJSONObject: body)
        try await app.test(.live) { client in
            defer { engine.finishAll() }
            let port = try #require(client.port)
            var request = URLRequest(url: URL(string: "http://localhost:\(port)\(path)")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = bodyData
            let call = Task { try await URLSession.shared.data(for: request) }
            #expect(await yields(engine.started, within: .seconds(10)), "the generation did not start")
            call.cancel()  // closes the connection
            #expect(await yields(engine.cancelled, within: .seconds(10)), "the generation was not cancelled")
            // Counted as 499 (client closed request) once the handler has ended.
            var counted = false
            for _ in 0..<100 where !counted {
                let text = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
                counted = text.split(separator: "\n").contains { line in
                    line.hasPrefix("postlens_http_requests_total{") && line.contains(#"route="\#(expectedRoute)""#)
                        && line.contains(#"status="499""#)
                }
                if !counted { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(counted, "the abandoned request was not counted as a 499")
        }
    }

    @Test func closingTheConnectionCancelsANonStreamingCompletion() async throws {
        try await abandon("/v1/chat/completions", body: ["messages": [user("Tell me a story.")]],
                          expectedRoute: "/v1/chat/completions")
    }

    @Test func closingTheConnectionCancelsAnAnalysis() async throws {
        try await abandon("/v1/analyze", body: ["task": "describe", "text": "A post."], expectedRoute: "/v1/analyze")
    }

    @Test func aRequestWhoseClientStaysIsAnswered() async throws {
        // The watcher is in the path of every live request: one that nobody abandons is answered as before.
        let app = buildApplication(configuration: Fixture.configuration(), engine: try Fixture.engine(), logger: Fixture.logger)
        try await app.test(.live) { client in
            for _ in 0..<2 {
                let response = try await client.post(json: ["messages": [user("Hi")], "max_tokens": 4, "temperature": 0])
                #expect(response.status == .ok)
                #expect((response.usage["completion_tokens"] as? Int) == 4)
            }
        }
    }
}
