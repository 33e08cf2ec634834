import Foundation
import Kernels
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// `POST /v1/chat/completions` through the router (no sockets) on the tiny fixture model.
@Suite struct ChatCompletionTests {
    @Test func plainCompletionEqualsEngineGreedyOutput() async throws {
        let engine = try Fixture.engine()
        let expected = try await engine.complete(InferenceEngine.Request(
            messages: [ChatMessage(role: .system, text: "You are terse."), ChatMessage(role: .user, text: "Describe the weather.")],
            parameters: greedy(12, engine: engine)))
        try await runApp { client in
            let response = try await client.post(json: [
                "model": "tiny", "temperature": 0, "max_tokens": 12, "user": "tester", "some_future_field": ["ignored": true],
                "messages": [["role": "system", "content": "You are terse."], user("Describe the weather.")],
            ])
            #expect(response.status == .ok)
            #expect((response.json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(response.json["object"] as? String == "chat.completion")
            #expect(response.json["model"] as? String == "tiny")
            #expect(response.json["created"] as? Int != nil)
            #expect(response.content == expected.text)
            #expect((response.choice["message"] as? [String: Any])?["role"] as? String == "assistant")
            #expect(response.choice["index"] as? Int == 0)
            #expect(response.choice["finish_reason"] as? String == openAIFinishReason(expected.finishReason))
            #expect(response.choice.keys.contains("logprobs") && response.choice["logprobs"] is NSNull)
            #expect(response.usage["prompt_tokens"] as? Int == expected.usage.promptTokens)
            #expect(response.usage["completion_tokens"] as? Int == expected.usage.completionTokens)
            #expect(response.usage["total_tokens"] as? Int == expected.usage.totalTokens)
            #expect((response.usage["postlens"] as? [String: Any])?["ttft_ms"] is Double)
            #expect(response.headers[.requestID] != nil)
        }
    }

    @Test func streamingChunksHaveOpenAIShapeAndEndWithDone() async throws {
        try await runApp { client in
            let body: [String: Any] = ["model": "tiny", "temperature": 0, "max_tokens": 10, "messages": [user("Count to five.")]]
            let plain = try await client.post(json: body)
            var streamed = body
            streamed["stream"] = true
            streamed["stream_options"] = ["include_usage": true]
            let response = try await client.post(json: streamed)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            #expect(response.events.last == "[DONE]")
            let chunks = response.chunks
            #expect(chunks.count >= 3)
            let ids = Set(chunks.compactMap { $0["id"] as? String })
            #expect(ids.count == 1 && ids.first?.hasPrefix("chatcmpl-") == true)
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            let choices = chunks.map { $0["choices"] as? [[String: Any]] ?? [] }
            let first = try #require(choices.first?.first)
            #expect((first["delta"] as? [String: Any])?["role"] as? String == "assistant")
            #expect(first["finish_reason"] is NSNull)
            // With include_usage: every chunk carries usage (null until the last, which has no choices).
            #expect(chunks.dropLast().allSatisfy { $0["usage"] is NSNull })
            let last = try #require(chunks.last)
            #expect((last["choices"] as? [Any])?.isEmpty == true)
            #expect((last["usage"] as? [String: Any])?["completion_tokens"] as? Int == plain.usage["completion_tokens"] as? Int)
            let finishing = choices.dropLast().last?.first
            #expect(finishing?["finish_reason"] as? String == plain.choice["finish_reason"] as? String)
            let text = choices.compactMap { ($0.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
            #expect(text == plain.content)
        }
    }

    @Test func streamingWithoutIncludeUsageHasNoUsageKey() async throws {
        try await runApp { client in
            let response = try await client.post(json: [
                "temperature": 0, "max_tokens": 4, "stream": true, "messages": [user("Hi")],
            ])
            #expect(response.status == .ok)
            #expect(response.chunks.allSatisfy { !$0.keys.contains("usage") })
            #expect(response.events.last == "[DONE]")
        }
    }

    @Test func imageDataURLMatchesEngine() async throws {
        let engine = try Fixture.engine()
        let expected = try await engine.complete(InferenceEngine.Request(
            messages: [ChatMessage(role: .user, content: [.image, .text("What is in the picture?")])],
            images: [try Fixture.image("models/tiny/reference/img_a.png")], parameters: greedy(8, engine: engine)))
        try await runApp { client in
            let response = try await client.post(json: [
                "temperature": 0, "max_tokens": 8,
                "messages": [userWithImages("What is in the picture?", [try Fixture.dataURL("models/tiny/reference/img_a.png")])],
            ])
            #expect(response.status == .ok)
            #expect(response.content == expected.text)
            #expect((response.usage["postlens"] as? [String: Any])?["image_tokens"] as? Int == expected.usage.imageTokens)
            #expect(expected.usage.imageTokens > 0)
        }
    }

    @Test func twoImagesInOneMessage() async throws {
        let engine = try Fixture.engine()
        let expected = try await engine.complete(InferenceEngine.Request(
            messages: [ChatMessage(role: .user, content: [.image, .image, .text("Compare them.")])],
            images: [try Fixture.image("models/tiny/reference/img_a.png"), try Fixture.image("models/tiny/reference/img_b.png")],
            parameters: greedy(8, engine: engine)))
        try await runApp { client in
            let response = try await client.post(json: [
                "temperature": 0, "max_tokens": 8,
                "messages": [userWithImages("Compare them.", [try Fixture.dataURL("models/tiny/reference/img_a.png"),
                                                              try Fixture.dataURL("models/tiny/reference/img_b.png")],
                                            detail: "auto")],
            ])
            #expect(response.status == .ok)
            #expect(response.content == expected.text)
            #expect((response.usage["postlens"] as? [String: Any])?["image_tokens"] as? Int == expected.usage.imageTokens)
        }
    }

    @Test func detailLowShrinksOnlyItsOwnImage() async throws {
        let engine = try Fixture.engine()
        let a = try Fixture.dataURL("models/tiny/reference/img_large.png"), b = try Fixture.dataURL("models/tiny/reference/img_b.png")
        // All images low: the request-wide budget is the low one, exactly as the engine applies max_pixels.
        let lowTokens = 8
        let expected = try await engine.complete(InferenceEngine.Request(
            messages: [ChatMessage(role: .user, content: [.image, .text("?")])],
            images: [try Fixture.image("models/tiny/reference/img_large.png")], parameters: greedy(4, engine: engine),
            maxPixels: lowTokens * 1024))
        try await runApp(Fixture.configuration { $0.lowDetailImageTokens = lowTokens }) { client in
            func imageTokens(_ response: JSONResponse) -> Int? { (response.usage["postlens"] as? [String: Any])?["image_tokens"] as? Int }
            let low = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": [userWithImages("?", [a], detail: "low")]])
            #expect(low.content == expected.text)
            #expect(imageTokens(low) == expected.usage.imageTokens)
            let high = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": [userWithImages("?", [a], detail: "high")]])
            let mixed = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": [
                ["role": "user", "content": [["type": "image_url", "image_url": ["url": a, "detail": "low"]],
                                             ["type": "image_url", "image_url": ["url": b, "detail": "high"]],
                                             ["type": "text", "text": "?"]]],
            ]])
            let bHigh = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": [userWithImages("?", [b], detail: "high")]])
            #expect(mixed.status == .ok)
            #expect(try #require(imageTokens(low)) < #require(imageTokens(high)))
            #expect(imageTokens(mixed) == imageTokens(low).flatMap { l in imageTokens(bHigh).map { l + $0 } })
        }
    }

    @Test func multiTurnWithEarlierImage() async throws {
        let engine = try Fixture.engine()
        let expected = try await engine.complete(InferenceEngine.Request(
            messages: [ChatMessage(role: .user, content: [.image, .text("What is this?")]),
                       ChatMessage(role: .assistant, text: "A picture."),
                       ChatMessage(role: .user, text: "What colour is it?")],
            images: [try Fixture.image("models/tiny/reference/img_c.png")], parameters: greedy(8, engine: engine)))
        try await runApp { client in
            let response = try await client.post(json: [
                "temperature": 0, "max_tokens": 8,
                "messages": [userWithImages("What is this?", [try Fixture.dataURL("models/tiny/reference/img_c.png")]),
                             ["role": "assistant", "content": [["type": "text", "text": "A picture."]]],
                             user("What colour is it?")],
            ])
            #expect(response.status == .ok)
            #expect(response.content == expected.text)
        }
    }

    @Test func stopStringEndsTheAnswerBeforeIt() async throws {
        try await runApp { client in
            var body: [String: Any] = ["temperature": 0, "max_tokens": 24, "messages": [user("Tell me a story.")]]
            let free = try #require(try await client.post(json: body).content)
            try #require(free.count >= 8, "the greedy answer is too short to cut: \(free.debugDescription)")
            let start = free.index(free.startIndex, offsetBy: 4)
            let stop = String(free[start..<free.index(start, offsetBy: 3)])
            let cut = String(free[..<free.range(of: stop)!.lowerBound])
            body["stop"] = stop
            let response = try await client.post(json: body)
            #expect(response.content == cut)
            #expect(response.choice["finish_reason"] as? String == "stop")
            body["stop"] = ["\u{1F600}never", stop]
            body["stream"] = true
            let streamed = try await client.post(json: body)
            let text = streamed.chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
            #expect(text.joined() == cut)
        }
    }

    @Test func logprobsHaveOpenAIShape() async throws {
        try await runApp { client in
            let response = try await client.post(json: [
                "temperature": 0, "max_tokens": 5, "logprobs": true, "top_logprobs": 3, "messages": [user("Hello")],
            ])
            #expect(response.status == .ok)
            let content = try #require((response.choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
            #expect(content.count == response.usage["completion_tokens"] as? Int)
            for entry in content {
                #expect(entry["token"] is String)
                let logprob = try #require(entry["logprob"] as? Double)
                #expect(logprob <= 0)
                #expect(entry["bytes"] is [Int])
                let top = try #require(entry["top_logprobs"] as? [[String: Any]])
                #expect(top.count == 3)
                // Greedy: the chosen token is the most likely one.
                #expect(abs((top.first?["logprob"] as? Double ?? 1) - logprob) < 1e-5)
            }
            let streamed = try await client.post(json: [
                "temperature": 0, "max_tokens": 5, "logprobs": true, "stream": true, "messages": [user("Hello")],
            ])
            let streamedEntries = streamed.chunks.flatMap {
                ((($0["choices"] as? [[String: Any]])?.first?["logprobs"] as? [String: Any])?["content"] as? [[String: Any]]) ?? []
            }
            #expect(streamedEntries.count == content.count)
        }
    }

    @Test func seedMakesSamplingReproducible() async throws {
        try await runApp { client in
            let body: [String: Any] = ["temperature": 1.0, "top_p": 0.95, "top_k": 50, "seed": 1234, "max_tokens": 12,
                                       "messages": [user("Write anything.")]]
            let a = try await client.post(json: body)
            let b = try await client.post(json: body)
            #expect(a.status == .ok)
            #expect(a.content != nil && a.content == b.content)
        }
    }

    @Test func modelsAndHealth() async throws {
        try await runApp(Fixture.configuration { $0.apiKeys = ["secret"] }) { client in
            let health = try await client.get("/health")
            #expect(health.status == .ok)
            #expect(health.json["status"] as? String == "ready")
            #expect(health.json["model"] as? String == "tiny")
            #expect(health.json["uptime_s"] is Double)
            // The level the kernels run at, as `postlens cpu` names it.
            #expect(health.json["isa_level"] as? String == KernelDispatch.level.description)
            let auth: HTTPFields = [.authorization: "Bearer secret"]
            let models = try await client.get("/v1/models", headers: auth)
            #expect(models.json["object"] as? String == "list")
            let data = try #require(models.json["data"] as? [[String: Any]])
            #expect(data.count == 1 && data[0]["id"] as? String == "tiny" && data[0]["object"] as? String == "model")
            #expect(try await client.get("/v1/models/tiny", headers: auth).status == .ok)
            #expect(try await client.get("/v1/models/other", headers: auth).status == .notFound)
        }
    }

    @Test func healthSaysLoadingUntilTheModelIsReady() async throws {
        let host = ModelHost(modelID: "tiny")
        let app = buildApplication(configuration: Fixture.configuration(), host: host, logger: Fixture.logger)
        try await app.test(.router) { client in
            let health = try await client.get("/health")
            #expect(health.status == .serviceUnavailable)
            #expect(health.json["status"] as? String == "loading")
            let chat = try await client.post(json: ["messages": [user("Hi")]])
            #expect(chat.status == .serviceUnavailable)
            #expect(chat.headers[.retryAfter] != nil)
            host.setReady(try Fixture.engine())
            #expect(try await client.get("/health").json["status"] as? String == "ready")
        }
    }

    @Test func localImagesOnlyUnderTheAllowedDirectory() async throws {
        let allowed = Fixture.root.appendingPathComponent("models/tiny/reference")
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        let link = outside.appendingPathComponent("inside")
        try FileManager.default.createDirectory(at: link, withIntermediateDirectories: true)
        // A symlink inside a second allowed folder that points out of it.
        let escape = link.appendingPathComponent("escape.png")
        try FileManager.default.createSymbolicLink(at: escape, withDestinationURL: allowed.appendingPathComponent("img_a.png"))

        @Sendable func ask(_ client: any TestClientProtocol, _ url: String) async throws -> JSONResponse {
            try await client.post(json: ["temperature": 0, "max_tokens": 2, "messages": [userWithImages("What?", [url])]])
        }
        try await runApp(Fixture.configuration { $0.allowedImageDirectory = allowed }) { client in
            #expect(try await ask(client, allowed.appendingPathComponent("img_a.png").path).status == .ok)
            #expect(try await ask(client, "file://" + allowed.appendingPathComponent("img_b.png").path).status == .ok)
            #expect(try await ask(client, "img_c.png").status == .ok)
            let dotdot = try await ask(client, allowed.path + "/../../../images/gray.jpg")
            #expect(dotdot.status == .badRequest)
            #expect(dotdot.errorParam == "messages[0].content[0].image_url.url")
            #expect(try await ask(client, allowed.path + "/missing.png").status == .badRequest)
        }
        try await runApp(Fixture.configuration { $0.allowedImageDirectory = link }) { client in
            let response = try await ask(client, escape.path)
            #expect(response.status == .badRequest)
            #expect(response.errorMessage.contains("outside"))
        }
        try await runApp { client in
            let response = try await ask(client, allowed.appendingPathComponent("img_a.png").path)
            #expect(response.status == .badRequest)
            #expect(response.errorMessage.contains("--allow-image-dir"))
        }
    }
}
