import Analysis
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// An engine that answers every request with the same text: makes structured results deterministic.
final class ScriptedEngine: ChatEngine, @unchecked Sendable {
    let defaultParameters = GenerationParameters()
    let preprocessor = PreprocessorConfiguration.qwen3VL
    let text: String
    init(_ text: String) { self.text = text }

    func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
        let text = text
        return AsyncThrowingStream { continuation in
            var timings = Timings()
            timings.timeToFirstTokenMs = 1.5
            continuation.yield(.delta(text: text, tokenIDs: [1], logprobs: []))
            continuation.yield(.finished(GenerationResult(text: text, tokenIDs: [1], finishReason: .stop,
                                                          usage: Usage(promptTokens: 7, completionTokens: 3), timings: timings, logprobs: [])))
            continuation.finish()
        }
    }
}

/// `POST /v1/analyze` and the `/v1/batches` routes. The tiny fixture model's answers are gibberish, so with it the
/// tests check shapes and that a structured task ends in a result or a recorded error, never a 5xx.
@Suite struct AnalyzeAPITests {
    static var customSchema: [String: Any] {
        ["type": "object", "required": ["is_food", "dish"],
         "properties": ["is_food": ["type": "boolean"], "dish": ["type": ["string", "null"]]]]
    }

    /// Exactly one of `result` (an object) and `error` (a non-empty string).
    func expectResultOrError(_ json: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
        let result = json["result"], error = json["error"]
        let hasResult = result is [String: Any], hasError = (error as? String).map { !$0.isEmpty } ?? false
        #expect(hasResult != hasError, "result: \(String(describing: result)), error: \(String(describing: error))",
                sourceLocation: sourceLocation)
        #expect(hasResult ? error is NSNull : result is NSNull, sourceLocation: sourceLocation)
    }

    // MARK: - /v1/analyze

    /// The real (tiny, random) engine at the task's default budget: the bounded schema closes whatever it writes, so
    /// the answer is a result, never "not valid JSON". A budget below the task's worst case is refused, naming it.
    @Test func textTaskOnTheFixtureModel() async throws {
        try await runApp { client in
            let response = try await client.post("/v1/analyze", json: [
                "task": "sentiment", "text": "这家店的面太好吃了！", "options": ["language": "en"],
            ])
            #expect(response.status == .ok, "\(response.raw)")
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.json["task"] as? String == "sentiment@2")
            #expect(response.json["model"] as? String == "tiny")
            #expect(response.json["result"] is [String: Any], "\(response.raw)")
            #expect(response.json["error"] is NSNull)
            #expect(response.json["finish_reason"] as? String == "stop")
            #expect(response.json["raw"] is String)
            let usage = response.usage
            #expect((usage["prompt_tokens"] as? Int ?? 0) > 0)
            let worst = try #require(try AnalysisTask.builtIn(.sentiment).worstCaseTokens)
            #expect((usage["completion_tokens"] as? Int ?? 0) > 0 && (usage["completion_tokens"] as? Int ?? 0) <= worst)
            #expect(usage["image_tokens"] as? Int == 0)
            let timings = try #require(response.json["timings"] as? [String: Any])
            #expect(timings["model_calls"] as? Int == 1)
            for key in ["total_ms", "prefill_ms", "decode_ms", "ttft_ms"] { #expect(timings[key] as? Double != nil, "\(key)") }

            let small = try await client.post("/v1/analyze", json: ["task": "sentiment", "text": "x", "options": ["max_tokens": worst - 1]])
            #expect(small.status == .badRequest && small.errorParam == "options.max_tokens", "\(small.raw)")
            #expect(small.errorMessage.contains("must be at least \(worst)"), "\(small.errorMessage)")
        }
    }

    @Test func imageTaskOnTheFixtureModel() async throws {
        let image = try Fixture.dataURL("images/tiny_20x30.png")
        try await runApp { client in
            let response = try await client.post("/v1/analyze", json: [
                "task": "describe", "images": [image], "options": ["dense": false],
            ])
            #expect(response.status == .ok, "\(response.raw)")
            #expect(response.json["task"] as? String == "describe@2")
            #expect(response.json["result"] is [String: Any], "\(response.raw)")
            #expect((response.usage["image_tokens"] as? Int ?? 0) > 0)
        }
    }

    @Test func customTaskReturnsTheSchemaShapedAnswer() async throws {
        let engine = ScriptedEngine(#"{"is_food": true, "dish": "宫保鸡丁"}"#)
        try await runApp(engine: engine) { client in
            let response = try await client.post("/v1/analyze", json: [
                "task": "custom", "text": "午饭",
                "options": ["instruction": "这是食物吗？是什么菜？", "schema": Self.customSchema, "max_tokens": 32],
            ])
            #expect(response.status == .ok, "\(response.raw)")
            #expect(response.json["task"] as? String == "custom@1")
            let result = try #require(response.json["result"] as? [String: Any])
            #expect(result["is_food"] as? Bool == true)
            #expect(result["dish"] as? String == "宫保鸡丁")
            #expect(response.json["error"] is NSNull)
            #expect(response.json["finish_reason"] as? String == "stop")
            #expect(response.usage["prompt_tokens"] as? Int == 7)
            #expect((response.json["timings"] as? [String: Any])?["ttft_ms"] as? Double == 1.5)
        }
    }

    @Test func unusableModelOutputIsTheItemsErrorNotA500() async throws {
        try await runApp(engine: ScriptedEngine("sorry, no JSON here")) { client in
            let response = try await client.post("/v1/analyze", json: ["task": "moderation", "text": "hello"])
            #expect(response.status == .ok, "\(response.raw)")
            #expect(response.json["result"] is NSNull)
            #expect((response.json["error"] as? String)?.contains("not valid JSON") == true)
            #expect(response.json["raw"] as? String == "sorry, no JSON here")
        }
    }

    @Test func refusalsNameTheField() async throws {
        let garbage = "data:image/png;base64," + Data("this is not an image at all".utf8).base64EncodedString()
        try await runApp(engine: ScriptedEngine("{}")) { client in
            let cases: [([String: Any], HTTPResponse.Status, String?)] = [
                (["text": "hi"], .badRequest, "task"),
                (["task": "poetry", "text": "hi"], .badRequest, "task"),
                (["task": 5, "text": "hi"], .badRequest, "task"),
                (["task": "custom", "text": "hi", "options": ["schema": Self.customSchema]], .badRequest, "options.instruction"),
                (["task": "custom", "text": "hi", "options": ["instruction": "x"]], .badRequest, "options.schema"),
                (["task": "custom", "text": "hi", "options": ["instruction": "x", "schema": ["type": "array"]]], .badRequest, "options.schema"),
                (["task": "custom", "text": "hi", "options": ["instruction": "x", "schema": "{}"]], .badRequest, "options.schema"),
                (["task": "custom", "text": "hi", "options": ["instruction": "x",
                                                              "schema": ["type": "object", "properties": ["a": ["type": "wizard"]]]]],
                 .badRequest, "options.schema"),
                (["task": "ocr", "text": "hi", "options": ["instruction": "x"]], .badRequest, "options.instruction"),
                (["task": "ocr", "text": "hi", "options": ["max_tokens": 0]], .badRequest, "options.max_tokens"),
                (["task": "ocr", "text": "hi", "options": ["max_tokens": "many"]], .badRequest, "options.max_tokens"),
                (["task": "ocr", "text": "hi", "options": ["language": "fr"]], .badRequest, "options.language"),
                (["task": "ocr", "text": "hi", "options": ["dense": "maybe"]], .badRequest, "options.dense"),
                (["task": "ocr", "text": "hi", "options": ["temprature": 1]], .badRequest, "options.temprature"),
                (["task": "ocr", "text": "hi", "options": "fast"], .badRequest, "options"),
                (["task": "ocr", "text": 5], .badRequest, "text"),
                (["task": "ocr"], .badRequest, "text"),
                (["task": "ocr", "images": [5]], .badRequest, "images[0]"),
                (["task": "ocr", "images": [garbage, garbage]], .badRequest, "images"),
                (["task": "ocr", "images": [garbage]], .unprocessableContent, "images[0]"),
                (["task": "ocr", "images": ["https://example.com/a.png"]], .badRequest, "images[0]"),
                (["task": "ocr", "images": ["/etc/passwd"]], .badRequest, "images[0]"),
                (["task": "ocr", "text": "hi", "extra": true], .badRequest, "extra"),
            ]
            for (body, status, param) in cases {
                let response = try await client.post("/v1/analyze", json: body)
                #expect(response.status == status, "\(body): \(response.raw)")
                #expect(response.errorParam == param, "\(body): \(response.raw)")
                if let param, param != "images[0]" { #expect(response.errorMessage.contains(param), "\(response.raw)") }
            }
            let notJSON = try await client.post("/v1/analyze", raw: Data("{\"task\": ".utf8))
            #expect(notJSON.status == .badRequest)
            #expect(notJSON.errorMessage.contains("JSON"))
        }
    }

    @Test func localImagesOnlyUnderTheAllowedDirectory() async throws {
        let configuration = Fixture.configuration { $0.allowedImageDirectory = Fixture.root.appendingPathComponent("images") }
        try await runApp(configuration, engine: ScriptedEngine(#"{"lines": ["x"]}"#)) { client in
            let inside = try await client.post("/v1/analyze", json: ["task": "ocr", "images": ["tiny_20x30.png"]])
            #expect(inside.status == .ok, "\(inside.raw)")
            #expect((inside.json["result"] as? [String: Any])?["text"] as? String == "x")
            let outside = try await client.post("/v1/analyze", json: ["task": "ocr", "images": ["../models/tiny/config.json"]])
            #expect(outside.status == .badRequest)
            #expect(outside.errorParam == "images[0]")
        }
    }

    // MARK: - /v1/batches

    func jsonl(_ records: [[String: Any]]) throws -> Data {
        Data(try records.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n").utf8)
    }

    /// Polls the job until it is neither queued nor running (or the time limit passes).
    func waitForJob(_ client: any TestClientProtocol, _ id: String, seconds: Double = 120) async throws -> JSONResponse {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let response = try await client.get("/v1/batches/\(id)")
            if !["queued", "running"].contains(response.json["status"] as? String ?? "") || Date() > deadline { return response }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func text(_ client: any TestClientProtocol, _ uri: String) async throws -> (HTTPResponse.Status, String, String?) {
        try await client.execute(uri: uri, method: .get) { ($0.status, String(buffer: $0.body), $0.headers[.contentType]) }
    }

    @Test func batchOnTheFixtureModelRecordsEveryItemInOrder() async throws {
        let image = try Fixture.dataURL("images/tiny_20x30.png")
        let body = try jsonl([
            ["id": "a", "text": "服务很好", "meta": ["date": "2025-01-02"]],
            ["id": "b", "image": image, "text": "看图"],
            ["id": "c", "image": "https://example.com/x.png"],
            ["id": "d", "meta": ["x": 1]],
        ])
        try await runApp { client in
            let created = try await client.post("/v1/batches?task=sentiment&language=en", raw: body)
            #expect(created.status == .ok, "\(created.raw)")
            let id = try #require(created.json["id"] as? String)
            #expect(id.hasPrefix("batch_"))
            #expect(created.json["total"] as? Int == 4)
            #expect(created.json["task"] as? String == "sentiment@2")
            #expect(["queued", "running", "completed"].contains(created.json["status"] as? String ?? ""))
            #expect(created.json["state"] as? String == created.json["status"] as? String)

            let final = try await waitForJob(client, id)
            #expect(final.json["status"] as? String == "completed", "\(final.raw)")
            #expect(final.json["done"] as? Int == 4)
            #expect((final.json["failed"] as? Int ?? 0) >= 2)
            #expect(final.json["created_at"] as? Int != nil)
            #expect((final.json["summary"] as? [String: Any])?["total"] as? Int == 4)

            let (status, lines, type) = try await text(client, "/v1/batches/\(id)/results")
            #expect(status == .ok)
            #expect(type == "application/x-ndjson")
            let items = lines.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(items.map { $0["id"] as? String } == ["a", "b", "c", "d"])
            for item in items { expectResultOrError(item) }
            #expect((items[2]["error"] as? String)?.contains("remote image URLs") == true, "\(items[2])")
            #expect((items[3]["error"] as? String)?.contains("neither") == true, "\(items[3])")
            #expect((items[0]["meta"] as? [String: Any])?["date"] as? String == "2025-01-02")

            let (csvStatus, csv, csvType) = try await text(client, "/v1/batches/\(id)/results?format=csv")
            #expect(csvStatus == .ok)
            #expect(csvType?.hasPrefix("text/csv") == true)
            #expect(csv.hasPrefix("id,task,status,error,polarity,score,result\r\n"))
            #expect(csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count >= 5)
        }
    }

    @Test func customBatchWithSchemaInTheQuery() async throws {
        let schema = String(decoding: try JSONSerialization.data(withJSONObject: Self.customSchema), as: UTF8.self)
        var components = URLComponents(string: "/v1/batches")!
        components.queryItems = [.init(name: "task", value: "custom"), .init(name: "instruction", value: "这是食物吗？"),
                                 .init(name: "schema", value: schema)]
        let uri = components.percentEncodedQuery.map { "/v1/batches?" + $0.replacingOccurrences(of: "+", with: "%2B") }!
        try await runApp(engine: ScriptedEngine(#"{"is_food": false, "dish": null}"#)) { client in
            let created = try await client.post(uri, raw: try jsonl([["id": 1, "text": "x"], ["id": 2, "text": "y"], ["text": "z"]]))
            #expect(created.status == .ok, "\(created.raw)")
            let id = try #require(created.json["id"] as? String)
            let final = try await waitForJob(client, id, seconds: 30)
            #expect(final.json["status"] as? String == "completed")
            #expect(final.json["failed"] as? Int == 0)
            let (_, lines, _) = try await text(client, "/v1/batches/\(id)/results?format=jsonl")
            let items = lines.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(items.map { $0["id"] as? String } == ["1", "2", "line-3"])
            #expect(items.allSatisfy { ($0["result"] as? [String: Any])?["is_food"] as? Bool == false })
        }
    }

    @Test func batchRefusals() async throws {
        try await runApp(engine: ScriptedEngine("{}")) { client in
            for uri in ["/v1/batches/batch_nope", "/v1/batches/batch_nope/results"] {
                let response = try await client.get(uri)
                #expect(response.status == .notFound, "\(uri): \(response.raw)")
                #expect(response.errorCode == "not_found")
            }
            let cancelUnknown = try await client.post("/v1/batches/batch_nope/cancel", raw: Data())
            #expect(cancelUnknown.status == .notFound)

            let malformed = try await client.post("/v1/batches?task=ocr", raw: Data("{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\", \"text\": \n\n[1]\n".utf8))
            #expect(malformed.status == .badRequest, "\(malformed.raw)")
            #expect(malformed.errorMessage.contains("line 2"), "\(malformed.raw)")
            let notObject = try await client.post("/v1/batches?task=ocr", raw: Data("{\"id\": \"a\", \"text\": \"x\"}\n\n[1]\n".utf8))
            #expect(notObject.status == .badRequest)
            #expect(notObject.errorMessage.contains("line 3"), "\(notObject.raw)")

            let empty = try await client.post("/v1/batches?task=ocr", raw: Data("\n\n".utf8))
            #expect(empty.status == .badRequest)
            let noTask = try await client.post("/v1/batches", raw: Data("{\"text\": \"x\"}".utf8))
            #expect(noTask.status == .badRequest)
            #expect(noTask.errorParam == "task")
            let noInstruction = try await client.post("/v1/batches?task=custom&schema=%7B%22type%22%3A%22object%22%7D", raw: Data("{\"text\": \"x\"}".utf8))
            #expect(noInstruction.status == .badRequest)
            #expect(noInstruction.errorParam == "instruction")
            let badTokens = try await client.post("/v1/batches?task=ocr&max_tokens=-3", raw: Data("{\"text\": \"x\"}".utf8))
            #expect(badTokens.errorParam == "max_tokens")

            let ok = try await client.post("/v1/batches?task=ocr", raw: Data("{\"text\": \"x\"}".utf8))
            let id = try #require(ok.json["id"] as? String)
            let badFormat = try await client.get("/v1/batches/\(id)/results?format=xml")
            #expect(badFormat.status == .badRequest)
            #expect(badFormat.errorParam == "format")
        }
    }

    @Test func cancelStopsBeforeTheNextItem() async throws {
        let engine = BlockingEngine()
        try await runApp(engine: engine) { client in
            let created = try await client.post("/v1/batches?task=sentiment", raw: try jsonl([["id": "1", "text": "a"], ["id": "2", "text": "b"], ["id": "3", "text": "c"]]))
            let id = try #require(created.json["id"] as? String)
            for await _ in engine.started { break }  // the first item is in the engine
            let cancelled = try await client.post("/v1/batches/\(id)/cancel", raw: Data())
            #expect(cancelled.status == .ok)
            #expect(cancelled.json["status"] as? String == "cancelled")
            engine.releaseContinuation.yield()  // let the item in flight finish

            // The item in flight is recorded; nothing else starts.
            let deadline = Date().addingTimeInterval(30)
            var job = try await client.get("/v1/batches/\(id)")
            while job.json["done"] as? Int != 1 && Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
                job = try await client.get("/v1/batches/\(id)")
            }
            try await Task.sleep(for: .milliseconds(700))  // longer than the batch worker's poll
            job = try await client.get("/v1/batches/\(id)")
            #expect(job.json["status"] as? String == "cancelled")
            #expect(job.json["finished_at"] as? Int != nil)
            #expect(job.json["done"] as? Int == 1, "\(job.raw)")
            #expect(job.json["running"] as? Int == 0, "\(job.raw)")
            #expect(job.json["total"] as? Int == 3)
            let (_, lines, _) = try await text(client, "/v1/batches/\(id)/results")
            #expect(lines.split(separator: "\n").count == 1)
            // Cancelling again is harmless.
            let again = try await client.post("/v1/batches/\(id)/cancel", raw: Data())
            #expect(again.json["status"] as? String == "cancelled")
        }
    }

    @Test func batchesAreListedAndCountedInMetrics() async throws {
        try await runApp(engine: ScriptedEngine(#"{"lines": ["a"]}"#)) { client in
            var ids: [String] = []
            for n in 1...2 {
                let created = try await client.post("/v1/batches?task=ocr", raw: try jsonl((0..<n).map { ["id": "\($0)", "text": "x"] }))
                ids.append(try #require(created.json["id"] as? String))
            }
            for id in ids { #expect(try await waitForJob(client, id, seconds: 30).json["status"] as? String == "completed") }
            let list = try await client.get("/v1/batches")
            #expect(list.status == .ok)
            let data = try #require(list.json["data"] as? [[String: Any]])
            #expect(data.compactMap { $0["id"] as? String } == ids.reversed(), "newest first")
            #expect(data.first?["total"] as? Int == 2 && data.first?["done"] as? Int == 2)
            let limited = try await client.get("/v1/batches?limit=1")
            #expect((limited.json["data"] as? [Any])?.count == 1)

            // The worker publishes its counters when it stops (idle, just after the last result).
            var metrics = Samples(try await client.get("/metrics").raw)
            let deadline = Date().addingTimeInterval(10)
            while metrics.values(of: "postlens_worker_succeeded_items").reduce(0, +) < 3 && Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
                metrics = Samples(try await client.get("/metrics").raw)
            }
            #expect(metrics["postlens_jobs_database_up"] == 1)
            #expect(metrics["postlens_jobs_queue_depth"] == 0)
            #expect(metrics["postlens_jobs_claimed_items"] == 0)
            #expect(metrics[#"postlens_jobs{state="completed"}"#] == 2)
            #expect(metrics.values(of: "postlens_worker_succeeded_items").reduce(0, +) == 3, "the server's own batch worker ran 3 items")
        }
    }

    @Test func openAIBatchRequestsInTheBody() async throws {
        let lines = [
            ["custom_id": "a", "method": "POST", "url": "/v1/analyze", "body": ["task": "ocr", "text": "x"]],
            ["custom_id": "b", "method": "POST", "url": "/v1/embeddings", "body": ["input": "x"]],
        ]
        let body = try jsonl(lines)
        try await runApp(engine: ScriptedEngine(#"{"lines": ["a"]}"#)) { client in
            let created = try await client.post("/v1/batches", raw: body)
            #expect(created.status == .ok, "\(created.raw)")
            #expect(created.json["task"] as? String == "ocr@2")
            let id = try #require(created.json["id"] as? String)
            #expect(try await waitForJob(client, id, seconds: 30).json["status"] as? String == "completed")
            let (_, text, _) = try await self.text(client, "/v1/batches/\(id)/results?format=openai")
            let items = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(items.map { $0["custom_id"] as? String } == ["a", "b"])
            #expect(items[0]["error"] is NSNull)
            #expect(((items[1]["error"] as? [String: Any])?["message"] as? String)?.contains("/v1/embeddings is not supported") == true)
        }
    }
}
