import Dispatch
import Analysis
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
import TestSupport
@testable import Engine
import Qwen3VL
@testable import Server

/// The operator's pick of the served model (`serve --model A --offer B`): `/v1/models` lists both with their status,
/// `POST /v1/models/load` switches with one model in memory at a time, requests in flight finish on the old model,
/// a model that fails to load gives the previous one back, and batch jobs pin the model they run on.
@Suite struct ModelSwitchTests {
    static let tiny = Fixture.root.appendingPathComponent("models/tiny")
    static let thinking = Fixture.root.appendingPathComponent("models/thinking")

    static func choices() throws -> [ModelChoice] {
        [ModelChoice(id: "tiny", folder: tiny, description: try ModelDescription.read(from: tiny)),
         ModelChoice(id: "Qwen/thinking-fixture", folder: thinking, description: try ModelDescription.read(from: thinking))]
    }

    /// Engines the loader made, held weakly: whether the switched-from one was freed.
    final class Loads: Sendable {
        private final class Weak: @unchecked Sendable { weak var engine: InferenceEngine?; init(_ e: InferenceEngine) { engine = e } }
        private let made = Mutex<[(String, Weak)]>([])
        /// Loads of this id wait until `open` (so a test can watch the `loading` state).
        let held: String?
        let gate = DispatchSemaphore(value: 0)
        init(holding id: String? = nil) { held = id }

        func load(_ choice: ModelChoice) throws -> any ChatEngine {
            if choice.id == held { gate.wait() }
            let engine = try InferenceEngine(directory: choice.folder!, contextLimit: 2048, format: .f32)
            made.withLock { $0.append((choice.id, Weak(engine))) }
            return engine
        }
        var ids: [String] { made.withLock { $0.map(\.0) } }
        func alive(_ index: Int) -> Bool { made.withLock { $0[index].1.engine != nil } }
    }

    func waitUntilReady(_ client: any TestClientProtocol, seconds: Double = 60) async throws -> JSONResponse {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let health = try await client.get("/health")
            if health.json["status"] as? String != "loading" || Date() > deadline { return health }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func load(_ client: any TestClientProtocol, _ id: String) async throws -> JSONResponse {
        try await client.post("/v1/models/load", json: ["model": id])
    }

    @Test(.timeLimit(.minutes(3))) func theOperatorSwitchesToTheThinkingModelAndBack() async throws {
        let loads = Loads(holding: "Qwen/thinking-fixture")
        let host = ModelHost(choices: try Self.choices(), loader: { try loads.load($0) })
        host.startLoading(logger: Fixture.logger) { error in Issue.record("initial load failed: \(error)") }
        let app = buildApplication(configuration: Fixture.configuration(), host: host, logger: Fixture.logger)
        try await app.test(.router) { client in
            #expect(try await waitUntilReady(client).json["status"] as? String == "ready")
            let listed = try #require(try await client.get("/v1/models").json["data"] as? [[String: Any]])
            #expect(listed.map { $0["id"] as? String } == ["tiny", "Qwen/thinking-fixture"])
            #expect(listed.map { ($0["postlens"] as? [String: Any])?["status"] as? String } == ["loaded", "available"])
            #expect((listed[1]["postlens"] as? [String: Any])?["thinking"] as? Bool == true)
            // An id with a slash is one model, not a path.
            #expect(try await client.get("/v1/models/Qwen/thinking-fixture").json["id"] as? String == "Qwen/thinking-fixture")
            // Offered but not loaded: a 409 that says how to switch, not a 404.
            let early = try await client.post(json: ["model": "Qwen/thinking-fixture", "max_tokens": 2, "messages": [user("Hi")]])
            expectOpenAIError(early, .conflict, code: "model_not_loaded")
            #expect(early.errorMessage.contains("POST /v1/models/load"))

            #expect(loads.alive(0))
            let started = try await load(client, "Qwen/thinking-fixture")
            #expect(started.status == .accepted, "\(started.raw)")
            #expect(started.json["status"] as? String == "loading" && started.json["previous"] as? String == "tiny")
            // While it loads: /health and chat say so, the list shows it, a second switch is refused.
            let health = try await client.get("/health")
            #expect(health.status == .serviceUnavailable)
            #expect(health.json["status"] as? String == "loading" && health.json["model"] as? String == "Qwen/thinking-fixture")
            expectOpenAIError(try await client.post(json: ["max_tokens": 2, "messages": [user("Hi")]]), .serviceUnavailable, code: "model_loading")
            let during = try #require(try await client.get("/v1/models").json["data"] as? [[String: Any]])
            #expect(during.map { ($0["postlens"] as? [String: Any])?["status"] as? String } == ["loading", "available"])
            expectOpenAIError(try await load(client, "tiny"), .conflict, code: "model_switch_refused")
            loads.gate.signal()

            let ready = try await waitUntilReady(client)
            #expect(ready.json["status"] as? String == "ready" && ready.json["model"] as? String == "Qwen/thinking-fixture")
            #expect((ready.json["model_info"] as? [String: Any])?["thinking"] as? Bool == true)
            // One model in memory: the tiny engine the host held is gone once the thinking one is loaded.
            #expect(loads.ids == ["tiny", "Qwen/thinking-fixture"])
            #expect(!loads.alive(0), "the switched-from engine is still alive")
            let thought = try await client.post(json: ["temperature": 0, "max_tokens": 12, "max_reasoning_tokens": 4, "messages": [user("How much?")]])
            #expect(thought.status == .ok, "\(thought.raw)")
            #expect(thought.json["model"] as? String == "Qwen/thinking-fixture")
            #expect(((thought.choice["message"] as? [String: Any])?["reasoning_content"] as? String)?.isEmpty == false)
            #expect(try await load(client, "Qwen/thinking-fixture").json["status"] as? String == "loaded")

            // And back: the Instruct model answers without reasoning and refuses a reasoning budget.
            #expect(try await load(client, "tiny").status == .accepted)
            #expect(try await waitUntilReady(client).json["model"] as? String == "tiny")
            let plain = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": [user("How much?")]])
            #expect(plain.status == .ok && plain.json["model"] as? String == "tiny")
            #expect((plain.choice["message"] as? [String: Any])?["reasoning_content"] == nil)
            expectOpenAIError(try await client.post(json: ["max_tokens": 4, "max_reasoning_tokens": 4, "messages": [user("Hi")]]), .badRequest)
            #expect(!loads.alive(1))
            expectOpenAIError(try await load(client, "Qwen/Qwen3-VL-8B-Instruct"), .notFound, code: "model_not_found")
        }
    }

    @Test(.timeLimit(.minutes(2))) func requestsInFlightFinishOnTheOldModelBeforeTheNewOneLoads() async throws {
        let calls = Mutex<[String]>([])
        let host: ModelHost
        let heldStarted: AsyncStream<Void>, heldRelease: AsyncStream<Void>.Continuation
        do {
            // The test keeps the engine's streams, not the engine: the host and the request are its only holders.
            let engine = BlockingEngine()
            (heldStarted, heldRelease) = (engine.started, engine.releaseContinuation)
            host = ModelHost(choices: try Self.choices(), loader: { choice in
                calls.withLock { $0.append(choice.id) }
                return ScriptedEngine("from the new model")
            }, engine: engine)
        }
        let app = buildApplication(configuration: Fixture.configuration(), host: host, logger: Fixture.logger)
        try await app.test(.router) { client in
            async let inFlight = client.post(json: ["messages": [user("Hi")]])
            for await _ in heldStarted { break }
            #expect(try await load(client, "Qwen/thinking-fixture").status == .accepted)
            try await Task.sleep(for: .milliseconds(300))
            // The old engine still answers its request: the new model is not read beside it.
            #expect(calls.withLock { $0 }.isEmpty)
            heldRelease.yield()
            let answer = try await inFlight
            #expect(answer.status == .ok && answer.content == "ok" && answer.json["model"] as? String == "tiny")
            #expect(try await waitUntilReady(client).json["status"] as? String == "ready")
            #expect(calls.withLock { $0 } == ["Qwen/thinking-fixture"])
            let next = try await client.post(json: ["messages": [user("Hi")]])
            #expect(next.content == "from the new model" && next.json["model"] as? String == "Qwen/thinking-fixture")
        }
    }

    @Test(.timeLimit(.minutes(2))) func aModelThatFailsToLoadGivesThePreviousOneBack() async throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "weights are truncated" } }
        let host = ModelHost(choices: try Self.choices(), loader: { choice in
            if choice.id != "tiny" { throw Broken() }
            return ScriptedEngine("tiny again")
        }, engine: ScriptedEngine("tiny"))
        let app = buildApplication(configuration: Fixture.configuration(), host: host, logger: Fixture.logger)
        try await app.test(.router) { client in
            #expect(try await load(client, "Qwen/thinking-fixture").status == .accepted)
            let health = try await waitUntilReady(client)
            #expect(health.status == .ok && health.json["model"] as? String == "tiny")
            let reason = try #require(health.json["switch_error"] as? String)
            #expect(reason.contains("Qwen/thinking-fixture") && reason.contains("weights are truncated") && reason.contains("'tiny' is served again"))
            #expect(try await client.post(json: ["messages": [user("Hi")]]).content == "tiny again")
        }
    }

    @Test(.timeLimit(.minutes(2))) func batchItemsInFlightFinishOnTheOldModelAndTheRestRunOnTheNewOne() async throws {
        let answer = TaskExamples.modelOutput(for: try AnalysisTask.builtIn(.sentiment)).sortedText
        let calls = Mutex<[String]>([])
        let host: ModelHost
        let started: AsyncStream<Void>, release: AsyncStream<Void>.Continuation
        do {
            let engine = BlockingEngine()  // answers "ok": not the task's JSON, so its item records an error
            (started, release) = (engine.started, engine.releaseContinuation)
            host = ModelHost(choices: try Self.choices(), loader: { choice in
                calls.withLock { $0.append(choice.id) }
                return ScriptedEngine(answer)
            }, engine: engine)
        }
        let app = buildApplication(configuration: Fixture.configuration(), host: host, logger: Fixture.logger)
        try await app.test(.router) { client in
            let created = try await client.post("/v1/batches?task=sentiment",
                                                raw: Data("{\"id\": \"first\", \"text\": \"好\"}\n{\"id\": \"second\", \"text\": \"差\"}".utf8))
            #expect(created.status == .ok, "\(created.raw)")
            let id = try #require(created.json["id"] as? String)
            for await _ in started { break }
            #expect(try await load(client, "Qwen/thinking-fixture").status == .accepted)
            try await Task.sleep(for: .milliseconds(300))
            // The server's batch worker still holds the old engine for the item in flight: nothing new is read yet.
            #expect(calls.withLock { $0 }.isEmpty)
            release.yield()
            let final = try await AnalyzeAPITests().waitForJob(client, id, seconds: 60)
            #expect(final.json["status"] as? String == "completed", "\(final.raw)")
            #expect(calls.withLock { $0 } == ["Qwen/thinking-fixture"])
            let (_, lines, _) = try await AnalyzeAPITests().text(client, "/v1/batches/\(id)/results")
            let items = lines.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(items.map { $0["id"] as? String } == ["first", "second"])
            // The first item ran on the old model to its end; the second on the new one.
            #expect((items.first?["error"] as? String)?.contains("not valid JSON") == true, "\(items)")
            #expect((items.last?["result"] as? [String: Any])?["polarity"] as? String == "mixed", "\(items)")
        }
    }

    @Test func aServerWithOneModelHasNothingToSwitchTo() async throws {
        try await runApp(engine: ScriptedEngine("x")) { client in
            #expect(try await load(client, "tiny").json["status"] as? String == "loaded")
            expectOpenAIError(try await load(client, "other"), .notFound, code: "model_not_found")
            expectOpenAIError(try await client.post("/v1/models/load", json: [:]), .badRequest)
        }
    }
}
