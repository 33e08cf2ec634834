@testable import Analysis
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// Batch jobs live under the chat API's admission limits (issue 13 §8) on the job queue (issue 14).
@Suite struct BatchLimitTests {
    @Test func aBatchWithTooManyRecordsIsRefused() async throws {
        try await runApp(Fixture.configuration { $0.maxBatchRecords = 5 }) { client in
            let lines = (0..<6).map { #"{"id": "p\#($0)", "text": "好评"}"# }.joined(separator: "\n")
            let response = try await client.post("/v1/batches?task=sentiment", raw: Data(lines.utf8))
            expectOpenAIError(response, .badRequest, code: "limit_exceeded")
            #expect(response.errorParam == "body")
            try await expectServesNormally(client)
        }
    }

    /// Counts engine calls; answers at once.
    final class CountingEngine: ChatEngine, Sendable {
        let defaultParameters = GenerationParameters()
        let preprocessor = PreprocessorConfiguration.qwen3VL
        let calls = Atomic<Int>(0)
        func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
            calls.add(1, ordering: .relaxed)
            return AsyncThrowingStream { continuation in
                let result = GenerationResult(text: "{}", tokenIDs: [1], finishReason: .stop, usage: Usage(promptTokens: 1, completionTokens: 1),
                                              timings: Timings(), logprobs: [])
                continuation.yield(.finished(result))
                continuation.finish()
            }
        }
    }

    @Test func batchItemsWaitForAPlaceInTheQueue() async throws {
        let engine = CountingEngine()
        let gate = AdmissionGate(limit: 1)
        var held: AdmissionGate.Ticket? = try #require(gate.enter())  // a chat request holds the only place
        let analyzer = ServerAnalyzer(engine: engine, log: nil, shielded: true, gate: gate)
        let request = AnalyzerRequest(task: try AnalysisTask.builtIn(.sentiment), record: PostRecord(id: "x", text: "好评"),
                                      messages: [ChatMessage(role: .user, text: "hi")], images: [], parameters: GenerationParameters(),
                                      maxPixels: nil, tile: nil)
        let call = Task { try await analyzer.analyze(request) }
        try await Task.sleep(for: .milliseconds(500))
        #expect(engine.calls.load(ordering: .relaxed) == 0, "a batch item ran while the queue was full")
        held = nil
        _ = held
        _ = try await call.value
        #expect(engine.calls.load(ordering: .relaxed) == 1)
        #expect(gate.inFlight == 0)
    }

    /// Jobs live in the job queue (images included), so a server writes no job folders; what bounds a server's batches
    /// is the number of unfinished jobs its clients may leave queued.
    @Test func unfinishedBatchesPerServerAreBounded() async throws {
        // No batch worker: the jobs stay queued.
        try await runApp(Fixture.configuration { $0.batchConcurrency = 0 }) { client in
            let body = Data(#"{"id": "p", "text": "好评"}"#.utf8)
            var ids: [String] = []
            for _ in 0..<BatchService.maxOpenSubmissions {
                let created = try await client.post("/v1/batches?task=sentiment", raw: body)
                #expect(created.status == .ok, "\(created.raw)")
                ids.append(try #require(created.json["id"] as? String))
            }
            let refused = try await client.post("/v1/batches?task=sentiment", raw: body)
            expectOpenAIError(refused, .tooManyRequests, code: "too_many_batches")
            let cancelled = try await client.post("/v1/batches/\(ids[0])/cancel", raw: Data())
            #expect(cancelled.json["status"] as? String == "cancelled")
            let accepted = try await client.post("/v1/batches?task=sentiment", raw: body)
            #expect(accepted.status == .ok, "a finished job makes room: \(accepted.raw)")
            try await expectServesNormally(client)
        }
    }
}
