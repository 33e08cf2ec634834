import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// What a graceful shutdown does to streams that outlive its grace period (`ShutdownDrain`).
@Suite struct ShutdownDrainTests {
    /// Sends one delta, then waits for more that never come until its stream is dropped.
    final class EndlessEngine: ChatEngine, @unchecked Sendable {
        let defaultParameters = GenerationParameters()
        let preprocessor = PreprocessorConfiguration.qwen3VL
        let (sentFirst, sentFirstContinuation) = AsyncStream<Void>.makeStream()
        let (dropped, droppedContinuation) = AsyncStream<Void>.makeStream()

        func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
            AsyncThrowingStream { continuation in
                continuation.yield(.delta(text: "Once", tokenIDs: [1], logprobs: []))
                sentFirstContinuation.yield()
                continuation.onTermination = { _ in self.droppedContinuation.yield() }
            }
        }
    }

    @Test func aDrainedStreamEndsWithAnErrorEventAndDone() async throws {
        let engine = EndlessEngine()
        let drain = ShutdownDrain()
        let configuration = Fixture.configuration()
        let app = buildApplication(configuration: configuration, host: ModelHost(modelID: "tiny", engine: engine), drain: drain,
                                   logger: Fixture.logger)
        try await app.test(.router) { client in
            async let response = client.post(json: ["stream": true, "messages": [user("Tell me a story.")]])
            for await _ in engine.sentFirst { break }
            try await Task.sleep(for: .milliseconds(50))  // the first chunks are being written
            drain.drainAll()
            let stream = try await response
            #expect(stream.status == .ok)
            #expect(stream.events.last == "[DONE]")
            let error = try #require(stream.chunks.last?["error"] as? [String: Any])
            #expect(error["code"] as? String == "server_shutting_down")
            #expect(stream.chunks.contains { chunk in
                ((chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String == "Once"
            })
            // The engine's stream was dropped, which cancels the generation.
            for await _ in engine.dropped { break }
            #expect(drain.isDrained)
        }
    }

    @Test func aStreamStartedAfterTheDrainIsRefused() async throws {
        let drain = ShutdownDrain()
        drain.drainAll()
        let app = buildApplication(configuration: Fixture.configuration(), host: ModelHost(modelID: "tiny", engine: EndlessEngine()),
                                   drain: drain, logger: Fixture.logger)
        try await app.test(.router) { client in
            let response = try await client.post(json: ["stream": true, "messages": [user("Hi")]])
            #expect(response.status == .serviceUnavailable)
            #expect(response.errorCode == "server_shutting_down")
        }
    }
}
