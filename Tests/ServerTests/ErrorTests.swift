import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Server

/// Every refusal has OpenAI's error shape and the status the SDKs map to their exception classes.
@Suite struct ErrorTests {
    /// `{"error": {"message", "type", "param", "code"}}` with all four keys present.
    func expectOpenAIShape(_ response: JSONResponse, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == status, "body: \(response.raw)", sourceLocation: sourceLocation)
        let error = response.error
        #expect(error["message"] is String && !(response.errorMessage.isEmpty), sourceLocation: sourceLocation)
        #expect(error["type"] is String, sourceLocation: sourceLocation)
        #expect(error.keys.contains("param") && error.keys.contains("code"), sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    }

    @Test func malformedBodies() async throws {
        try await runApp { client in
            let truncated = try await client.post(raw: Data(#"{"messages": [{"role": "user", "content": "hi"#.utf8))
            expectOpenAIShape(truncated, .badRequest)
            #expect(truncated.errorMessage.contains("JSON"))

            let notUTF8 = try await client.post(raw: Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D]))
            expectOpenAIShape(notUTF8, .badRequest)
            #expect(notUTF8.errorMessage.contains("UTF-8"))

            let missing = try await client.post(json: ["model": "tiny"])
            expectOpenAIShape(missing, .badRequest)
            #expect(missing.errorParam == "messages")

            let empty = try await client.post(json: ["messages": [Any]()])
            expectOpenAIShape(empty, .badRequest)
        }
    }

    /// A lone high surrogate followed by another `\\u` escape once trapped the schema JSON reader (which reads every
    /// chat body) on UInt32 underflow and killed the process. Each body must be answered, and the server must serve
    /// a normal request right after.
    @Test func surrogateEscapesDoNotCrash() async throws {
        try await runApp { client in
            let bodies = [
                #"{"x": "\ud800\u0041", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}"#,
                #"{"max_tokens": 1, "messages": [{"role": "user", "content": "\udbff\udbff\u0000"}]}"#,
                #"{"max_tokens": 1, "messages": [{"role": "user", "content": "\ud800\u"}]}"#,
                #"{"max_tokens": 1, "messages": [{"role": "user", "content": "\ud800\u+041"}]}"#,
                #"{"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "enum": ["\ud800\udbff"]}}}}"#,
            ]
            for body in bodies {
                let response = try await client.post(raw: Data(body.utf8))
                #expect(response.status == .ok || response.status == .badRequest, "\(body) → \(response.raw)")
            }
            let after = try await client.post(json: ["max_tokens": 1, "messages": [user("hi")]])
            #expect(after.status == .ok)
        }
    }

    @Test func wrongTypesNameTheField() async throws {
        try await runApp { client in
            let cases: [([String: Any], String)] = [
                (["messages": [user("hi")], "temperature": "hot"], "temperature"),
                (["messages": [user("hi")], "max_tokens": "ten"], "max_tokens"),
                (["messages": [user("hi")], "stream": "yes"], "stream"),
                (["messages": [user("hi")], "stop": 5], "stop"),
                (["messages": [user("hi")], "stream_options": ["include_usage": "y"]], "stream_options.include_usage"),
                (["messages": [["role": "user", "content": 5]]], "messages[0].content"),
                (["messages": [["role": "wizard", "content": "hi"]]], "messages[0].role"),
                (["messages": [user("hi"), ["role": "user", "content": [["type": "image_url", "image_url": ["url": 7]]]]]],
                 "messages[1].content[0].image_url.url"),
                (["messages": [["role": "user", "content": [["type": "audio", "audio": "x"]]]]], "messages[0].content[0].type"),
                (["messages": "hello"], "messages"),
            ]
            for (body, field) in cases {
                let response = try await client.post(json: body)
                expectOpenAIShape(response, .badRequest)
                #expect(response.errorParam == field, "\(response.raw)")
                #expect(response.errorMessage.contains(field), "\(response.raw)")
            }
        }
    }

    @Test func outOfRangeParameters() async throws {
        try await runApp { client in
            let cases: [([String: Any], String)] = [
                (["n": 2], "n"), (["temperature": 3], "temperature"), (["top_p": 0], "top_p"), (["max_tokens": 0], "max_tokens"),
                (["top_logprobs": 5], "top_logprobs"), (["top_logprobs": 50, "logprobs": true], "top_logprobs"),
                (["min_pixels": 9_000_000, "max_pixels": 100_000], "min_pixels"),
            ]
            for (extra, field) in cases {
                var body: [String: Any] = ["messages": [user("hi")]]
                body.merge(extra) { $1 }
                let response = try await client.post(json: body)
                expectOpenAIShape(response, .badRequest)
                #expect(response.errorParam == field, "\(response.raw)")
            }
        }
    }

    @Test func unknownModelAndRoute() async throws {
        try await runApp { client in
            let model = try await client.post(json: ["model": "gpt-4o", "messages": [user("hi")]])
            expectOpenAIShape(model, .notFound)
            #expect(model.errorCode == "model_not_found")
            #expect(model.errorParam == "model")
            let route = try await client.post("/v1/completions", json: ["prompt": "hi"])
            expectOpenAIShape(route, .notFound)
            expectOpenAIShape(try await client.get("/nothing/here"), .notFound)
        }
    }

    @Test func imageErrors() async throws {
        try await runApp { client in
            func ask(_ url: String) async throws -> JSONResponse {
                try await client.post(json: ["max_tokens": 1, "temperature": 0, "messages": [userWithImages("?", [url])]])
            }
            let badBase64 = try await ask("data:image/png;base64,@@not*base64@@")
            expectOpenAIShape(badBase64, .badRequest)
            #expect(badBase64.errorParam == "messages[0].content[0].image_url.url")

            // The claimed type is ignored: a JPEG labelled PNG decodes by its magic bytes.
            let mislabelled = try await ask(try Fixture.dataURL("images/gray.jpg", mime: "image/png"))
            #expect(mislabelled.status == .ok, "\(mislabelled.raw)")

            var generator = SystemRandomNumberGenerator()
            let noise = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) } )
            let random = try await ask("data:image/png;base64," + noise.base64EncodedString())
            expectOpenAIShape(random, .unprocessableContent)
            #expect(random.errorCode == "invalid_image")

            let truncatedPNG = try Fixture.file("models/tiny/reference/img_a.png").prefix(200)
            expectOpenAIShape(try await ask("data:image/png;base64," + truncatedPNG.base64EncodedString()), .unprocessableContent)

            let bomb = try await ask("data:image/png;base64," + pngHeader(width: 30000, height: 30000).base64EncodedString())
            expectOpenAIShape(bomb, .contentTooLarge)
            #expect(bomb.errorMessage.contains("30000"))
            #expect(bomb.errorCode == "image_too_large")

            let remote = try await ask("https://example.com/cat.png")
            expectOpenAIShape(remote, .badRequest)
            #expect(remote.errorCode == "unsupported_image_url")
            #expect(remote.errorMessage.contains("data: URL"))

            let inSystem = try await client.post(json: ["messages": [
                ["role": "system", "content": [["type": "image_url", "image_url": ["url": try Fixture.dataURL("models/tiny/reference/img_a.png")]]]],
                user("hi"),
            ]])
            expectOpenAIShape(inSystem, .badRequest)
        }
    }

    @Test func bodyTooLarge() async throws {
        try await runApp(Fixture.configuration { $0.maxBodyBytes = 1000 }) { client in
            let response = try await client.post(json: ["messages": [user(String(repeating: "a", count: 2000))]])
            expectOpenAIShape(response, .contentTooLarge)
        }
    }

    @Test func promptLongerThanTheContext() async throws {
        try await runApp { client in
            let long = String(repeating: "lorem ipsum dolor sit amet ", count: Fixture.contextLimit)
            let response = try await client.post(json: ["max_tokens": 1, "messages": [user(long)]])
            expectOpenAIShape(response, .badRequest)
            #expect(response.errorCode == "context_length_exceeded")
            let streamed = try await client.post(json: ["max_tokens": 1, "stream": true, "messages": [user(long)]])
            expectOpenAIShape(streamed, .badRequest)
        }
    }

    @Test func tenThousandMessagesAreRefusedCleanly() async throws {
        try await runApp { client in
            let messages = (0..<10_000).map { i in ["role": i % 2 == 0 ? "user" : "assistant", "content": "m\(i)"] }
            let response = try await client.post(json: ["max_tokens": 1, "messages": messages + [user("end")]])
            // 10,000 turns are more content parts than one request may have: a 400 naming the limit before anything
            // is rendered or tokenized, never a 500.
            expectOpenAIShape(response, .badRequest)
            #expect(response.errorCode == "limit_exceeded")
            #expect(response.errorParam == "messages")
        }
    }

    @Test func apiKeys() async throws {
        try await runApp(Fixture.configuration { $0.apiKeys = ["k1", "k2"] }) { client in
            let body: [String: Any] = ["max_tokens": 1, "messages": [user("hi")]]
            let missing = try await client.post(json: body)
            expectOpenAIShape(missing, .unauthorized)
            #expect(missing.errorCode == "invalid_api_key")
            expectOpenAIShape(try await client.post(json: body, headers: [.authorization: "Bearer nope"]), .unauthorized)
            expectOpenAIShape(try await client.post(json: body, headers: [.authorization: "Basic azE6"]), .unauthorized)
            expectOpenAIShape(try await client.get("/v1/models"), .unauthorized)
            #expect(try await client.post(json: body, headers: [.authorization: "Bearer k2"]).status == .ok)
            #expect(try await client.get("/health").status == .ok)
        }
    }

    @Test func queueFullGets429WithRetryAfter() async throws {
        let engine = BlockingEngine()
        try await runApp(Fixture.configuration { $0.maxQueue = 1 }, engine: engine) { client in
            async let first = client.post(json: ["messages": [user("one")]])
            var started = engine.started.makeAsyncIterator()
            _ = await started.next()
            let second = try await client.post(json: ["messages": [user("two")]])
            expectOpenAIShape(second, .tooManyRequests)
            #expect(second.headers[.retryAfter] == "2")
            #expect(second.errorCode == "queue_full")
            engine.releaseContinuation.yield()
            #expect(try await first.status == .ok)
            // The slot is free again.
            async let third = client.post(json: ["messages": [user("three")]])
            _ = await started.next()
            engine.releaseContinuation.yield()
            #expect(try await third.content == "ok")
        }
    }
}
