import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// No request may stop or stall the server (issue 13): each class of hostile request gets a clean 4xx/503 in OpenAI's
/// shape within a bounded time, and the server answers a normal request right after.
@Suite(.serialized) struct RequestLimitTests {
    // MARK: - 1. One JSON reader

    @Test func aBodyWithAByteOrderMarkIsServed() async throws {
        try await runApp { client in
            let body = Data([0xEF, 0xBB, 0xBF]) + Data(#"{"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}"#.utf8)
            let response = try await client.post(raw: body)
            #expect(response.status == .ok, "\(response.raw)")
        }
    }

    @Test func aDeeplyNestedIgnoredFieldIsServedAndHostileDepthIsRefused() async throws {
        try await runApp { client in
            func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
            let deep = #"{"x": \#(nested(100)), "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}"#
            #expect(try await client.post(raw: Data(deep.utf8)).status == .ok)
            let hostile = #"{"x": \#(nested(50_000)), "messages": []}"#
            let refused = try await withinSeconds(60, "a 50,000-deep body") { try await client.post(raw: Data(hostile.utf8)) }
            expectOpenAIError(refused, .badRequest)
            #expect(refused.errorMessage.contains("128 levels"), "\(refused.raw)")
            #expect(!refused.errorMessage.contains("schema"))
            try await expectServesNormally(client)
        }
    }

    @Test func duplicateKeysAreRefused() async throws {
        try await runApp { client in
            let response = try await client.post(raw: Data(#"{"messages": [], "messages": [{"role": "user", "content": "hi"}]}"#.utf8))
            expectOpenAIError(response, .badRequest)
            #expect(response.errorMessage.contains("twice"))
            try await expectServesNormally(client)
        }
    }

    // MARK: - 2. Work limits

    /// Schemas that once took minutes or gigabytes to compile (issue 13).
    static func pathologicalSchemas() -> [(String, String)] {
        let branches: [String] = (0..<3000).map { (i: Int) -> String in "{\"const\":\"v\(i)\"}" }
        let values: [String] = (0..<100_000).map { (i: Int) -> String in "\"e\(i)\"" }
        var definitions: [String] = []
        for i in 0..<30 {
            let next = "{\"$ref\":\"#/$defs/d\(i + 1)\"}"
            definitions.append("\"d\(i)\":{\"anyOf\":[\(next),{\"type\":\"array\",\"items\":\(next)}]}")
        }
        definitions.append("\"d30\":{\"type\":\"null\"}")
        return [
            ("nested quantifiers", "{\"type\":\"string\",\"pattern\":\"((a{1,100}){1,100}){1,100}\"}"),
            ("different branches", "{\"anyOf\":[" + branches.joined(separator: ",") + "]}"),
            ("huge enum", "{\"enum\":[" + values.joined(separator: ",") + "]}"),
            ("doubling refs", "{\"$defs\":{" + definitions.joined(separator: ",") + "},\"$ref\":\"#/$defs/d0\"}"),
        ]
    }

    @Test(arguments: pathologicalSchemas())
    func pathologicalSchemasAreRefusedQuickly(_ name: String, _ schema: String) async throws {
        try await runApp { client in
            let body = #"{"max_tokens": 4, "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": \#(schema)}}}"#
            let response = try await withinSeconds(60, name) { try await client.post(raw: Data(body.utf8)) }
            expectOpenAIError(response, .badRequest, code: "schema_too_complex")
            #expect(response.errorParam == "response_format.json_schema.schema")
            #expect(response.errorMessage.contains("limit max_"), "\(response.errorMessage)")
            try await expectServesNormally(client)
        }
    }

    @Test func thousandsOfOptionalPropertiesAreServed() async throws {
        try await runApp { client in
            let properties = (0..<1_500).map { #""p\#($0)":{"type":"integer"}"# }.joined(separator: ",")
            let body = #"{"max_tokens": 8, "temperature": 0, "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type":"object","properties":{\#(properties)},"additionalProperties":false}}}}"#
            let response = try await withinSeconds(60, "1,500 optional properties") { try await client.post(raw: Data(body.utf8)) }
            #expect(response.status == .ok, "\(response.raw.prefix(300))")
            if response.choice["finish_reason"] as? String == "length" {
                #expect(response.content?.hasPrefix("{") == true)
            }
        }
    }

    @Test func topKStopsAndContentPartsAreBounded() async throws {
        try await runApp { client in
            let topK = try await client.post(json: ["messages": [user("hi")], "top_k": 500_000])
            expectOpenAIError(topK, .badRequest, code: "limit_exceeded")
            #expect(topK.errorParam == "top_k")
            let manyStops = try await client.post(json: ["messages": [user("hi")], "stop": (0..<17).map { "s\($0)" }])
            expectOpenAIError(manyStops, .badRequest, code: "limit_exceeded")
            #expect(manyStops.errorParam == "stop")
            let longStop = try await client.post(json: ["messages": [user("hi")], "stop": [String(repeating: "x", count: 300)]])
            expectOpenAIError(longStop, .badRequest, code: "limit_exceeded")
            let parts = (0..<20_000).map { ["type": "text", "text": "part \($0) "] }
            let manyParts = try await withinSeconds(60, "20,000 text parts") {
                try await client.post(json: ["messages": [["role": "user", "content": parts]]])
            }
            expectOpenAIError(manyParts, .badRequest, code: "limit_exceeded")
            #expect(manyParts.errorParam == "messages")
            // A top_k at the limit is served (the sampler no longer sorts it by insertion).
            let bigK = try await withinSeconds(60, "top_k 1000") {
                try await client.post(json: ["messages": [user("hi")], "top_k": 1000, "temperature": 1, "max_tokens": 4])
            }
            #expect(bigK.status == .ok)
            try await expectServesNormally(client)
        }
    }

    @Test func textThatCannotFitIsRefusedBeforeTokenizing() async throws {
        try await runApp { client in
            // Megabytes of text: refused from its byte count (no tokenizer, no model work), promptly.
            let text = String(repeating: "word ", count: 400_000)
            let response = try await withinSeconds(60, "2 MB of text") { try await client.post(json: ["messages": [user(text)]]) }
            expectOpenAIError(response, .badRequest, code: "context_length_exceeded")
            try await expectServesNormally(client)
        }
    }

    // MARK: - 3. Memory budgets

    @Test func imagesAreCountedAndTheirPixelsBoundedFromTheHeaders() async throws {
        let configuration = Fixture.configuration {
            $0.maxImagesPerRequest = 2
            $0.maxRequestPixels = 10_000_000
        }
        try await runApp(configuration) { client in
            let image = try Fixture.dataURL("models/tiny/reference/img_a.png")
            let three = try await client.post(json: ["messages": [userWithImages("?", [image, image, image])]])
            expectOpenAIError(three, .badRequest, code: "too_many_images")
            // Two header-only PNGs of 2,000 × 3,000 each: 12 MP together. Refused from the headers (decoding them
            // would fail with 422: there are no pixels).
            let header = "data:image/png;base64," + pngHeader(width: 2000, height: 3000).base64EncodedString()
            let big = try await client.post(json: ["messages": [userWithImages("?", [header, header])]])
            expectOpenAIError(big, .contentTooLarge, code: "image_too_large")
            #expect(big.errorParam == "messages[0].content[1].image_url.url")
            try await expectServesNormally(client)
        }
    }

    @Test func aRequestCannotRaiseTheOperatorsImageCap() async throws {
        try await runApp(Fixture.configuration { $0.maxImageTokens = 16 }) { client in
            let image = try Fixture.dataURL("images/odd_333x217.jpg", mime: "image/jpeg")
            let response = try await client.post(json: ["max_tokens": 1, "max_pixels": 16_000_000,
                                                        "messages": [userWithImages("?", [image])]])
            #expect(response.status == .ok, "\(response.raw)")
            let imageTokens = (response.usage["postlens"] as? [String: Any])?["image_tokens"] as? Int
            #expect((imageTokens ?? .max) <= 16, "image tokens \(imageTokens.map(String.init) ?? "?") above --max-image-tokens 16")
        }
    }

    @Test func aRequestBiggerThanTheKVBudgetIsRefused() async throws {
        // The tiny model stores 2,048 bytes per token; a budget of 64 tokens.
        let engine = try InferenceEngine(directory: Fixture.modelFolder, contextLimit: Fixture.contextLimit, format: .f32,
                                         kvCacheBudgetBytes: 64 * 2048)
        try await runApp(engine: engine) { client in
            let response = try await client.post(json: ["max_tokens": 500, "messages": [user("hi")]])
            expectOpenAIError(response, .badRequest, code: "context_length_exceeded")
            #expect(response.errorMessage.contains("KV cache"))
            let small = try await client.post(json: ["max_tokens": 4, "messages": [user("hi")]])
            #expect(small.status == .ok)
        }
    }

    @Test func aFullKVBudgetGives503WithRetryAfter() async throws {
        // Room for one request of ~330 tokens at a time; six at once: the others find the budget in use.
        let engine = try InferenceEngine(directory: Fixture.modelFolder, contextLimit: Fixture.contextLimit, format: .f32,
                                         kvCacheBudgetBytes: 400 * 2048)
        try await runApp(Fixture.configuration { $0.maxQueue = 16 }, engine: engine) { client in
            struct Outcome: Sendable {
                let status: HTTPResponse.Status
                let code: String?
                let retryAfter: String?
                let shaped: Bool
            }
            let statuses = try await withThrowingTaskGroup(of: Outcome.self) { group in
                for i in 0..<6 {
                    group.addTask {
                        let r = try await client.post(json: ["max_tokens": 300, "temperature": 1, "seed": i, "messages": [user("story \(i)")]])
                        return Outcome(status: r.status, code: r.errorCode, retryAfter: r.headers[.retryAfter],
                                       shaped: r.status == .ok || (!r.errorMessage.isEmpty && r.error.keys.contains("param")))
                    }
                }
                var outcomes: [Outcome] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            for outcome in statuses where outcome.status != .ok {
                #expect(outcome.status == .serviceUnavailable && outcome.code == "kv_cache_full" && outcome.shaped)
                #expect(outcome.retryAfter == "2")
            }
            #expect(statuses.contains { $0.status == .ok })
            #expect(statuses.contains { $0.status == .serviceUnavailable }, "six concurrent requests all fit a one-request budget")
            // Reservations go back once each job has left the scheduler (just after its answer).
            for _ in 0..<100 where engine.kvBudget?.usedBytes != 0 { try await Task.sleep(for: .milliseconds(50)) }
            #expect(engine.kvBudget?.usedBytes == 0)
            try await expectServesNormally(client)
        }
    }
}
