@testable import Analysis
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// Batch jobs live under the chat API's admission limits and leave no files behind (issue 13 §8).
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
        let analyzer = ServerAnalyzer(engine: { engine }, log: nil, shielded: true, gate: gate)
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

    @Test func foldersOfGoneProcessesAreRemoved() throws {
        let temporary = FileManager.default.temporaryDirectory
        let gone = temporary.appendingPathComponent("\(BatchRegistry.prefix)4194000-test\(UUID().uuidString.prefix(4))")
        let mine = temporary.appendingPathComponent("\(BatchRegistry.prefix)\(getpid())-test\(UUID().uuidString.prefix(4))")
        for folder in [gone, mine] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(at: mine) }
        BatchRegistry.removeAbandoned(in: temporary)
        #expect(!FileManager.default.fileExists(atPath: gone.path))
        #expect(FileManager.default.fileExists(atPath: mine.path))
        // A registry's own folder goes with it.
        var registry: BatchRegistry? = BatchRegistry()
        let root = registry!.root
        try FileManager.default.createDirectory(at: root.appendingPathComponent("batch_x"), withIntermediateDirectories: true)
        registry = nil
        #expect(!FileManager.default.fileExists(atPath: root.path))
    }
}
