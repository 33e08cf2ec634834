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

    /// An upload costs no more than a chat body: JSON values are counted over all its lines together, each line has
    /// the body's depth limit, and each record's image is checked from its header at upload (its pixels against the
    /// chat limits), without decoding it. Limits on the upload refuse it whole, and nothing is stored.
    @Test func batchUploadsAreBoundedLikeRequestBodies() async throws {
        try await runApp(Fixture.configuration { $0.batchConcurrency = 0; $0.maxJSONValues = 1000 }) { client in
            // 250 lines of five values each: every line is small, the body is not.
            let many = (0..<250).map { #"{"id": "p\#($0)", "text": "x", "meta": {"a": 1}}"# }.joined(separator: "\n")
            let tooMany = try await client.post("/v1/batches?task=sentiment", raw: Data(many.utf8))
            expectOpenAIError(tooMany, .badRequest, code: "limit_exceeded")
            #expect(tooMany.errorParam == "body" && tooMany.errorMessage.contains("more than 1000 JSON values"), "\(tooMany.raw)")

            let deep = #"{"id": "ok", "text": "x"}"# + "\n" + #"{"id": "deep", "meta": "# + String(repeating: "[", count: 200)
                + String(repeating: "]", count: 200) + "}"
            let tooDeep = try await client.post("/v1/batches?task=sentiment", raw: Data(deep.utf8))
            expectOpenAIError(tooDeep, .badRequest, code: "limit_exceeded")
            #expect(tooDeep.errorParam == "line 2" && tooDeep.errorMessage.contains("deeper than 128"), "\(tooDeep.raw)")

            let listed = try await client.get("/v1/batches")
            #expect((listed.json["data"] as? [Any])?.isEmpty == true, "a refused upload stored a job: \(listed.raw)")

            let bomb = "data:image/png;base64," + pngHeader(width: 30000, height: 30000).base64EncodedString()
            let withBomb = #"{"id": "bomb", "image": "\#(bomb)", "text": "x"}"# + "\n" + #"{"id": "fine", "text": "好评"}"#
            let created = try await client.post("/v1/batches?task=sentiment", raw: Data(withBomb.utf8))
            #expect(created.status == .ok, "\(created.raw)")
            #expect(created.json["total"] as? Int == 2 && created.json["failed"] as? Int == 1, "\(created.raw)")
            let id = try #require(created.json["id"] as? String)
            let results = try await client.execute(uri: "/v1/batches/\(id)/results", method: .get) { String(buffer: $0.body) }
            let bombLine = try #require(results.split(separator: "\n").first { $0.contains(#""id":"bomb""#) }, "\(results)")
            #expect(bombLine.contains("image too large") && bombLine.contains("30000"), "\(bombLine)")
            try await expectServesNormally(client)
        }
    }

    /// Remembers the pixel budget of the requests it is given.
    final class PixelBudgetEngine: ChatEngine, Sendable {
        let defaultParameters = GenerationParameters()
        let preprocessor = PreprocessorConfiguration.qwen3VL
        let budgets = Mutex<[Int?]>([])
        func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
            budgets.withLock { $0.append(request.maxPixels) }
            return CountingEngine().generate(request)
        }
    }

    /// Items of jobs submitted anywhere (`postlens jobs submit --options '{"max_pixels": …}'`) are held to the
    /// server's image ceiling, as a request's `max_pixels` is.
    @Test func queueItemsCannotRaiseTheServersImageCeiling() async throws {
        let engine = PixelBudgetEngine()
        let analyzer = ServerAnalyzer(engine: engine, log: nil, shielded: true, gate: AdmissionGate(limit: 1), maxPixels: 1_000_000)
        for asked in [nil, 50_000_000, 200_000] as [Int?] {
            let request = AnalyzerRequest(task: try AnalysisTask.builtIn(.sentiment), record: PostRecord(id: "x", text: "好评"),
                                          messages: [ChatMessage(role: .user, text: "hi")], images: [], parameters: GenerationParameters(),
                                          maxPixels: asked, tile: nil)
            _ = try await analyzer.analyze(request)
        }
        #expect(engine.budgets.withLock { $0 } == [1_000_000, 1_000_000, 200_000])
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
