import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// `reasoning_content` in plain and streamed answers of a thinking model (the `thinking` fixture: the real Qwen3-VL
/// Thinking template), `max_reasoning_tokens`, turning thinking off, and refusals for a model that cannot think.
@Suite struct ThinkingAPITests {
    static let folder = Fixture.root.appendingPathComponent("models/thinking")
    private static let loaded = Result { try InferenceEngine(directory: folder, contextLimit: 2048, format: .f32) }
    static func engine() throws -> InferenceEngine { try loaded.get() }

    func runThinking(_ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let configuration = Fixture.configuration { $0.modelID = "thinking" }
        let host = ModelHost(modelID: "thinking", engine: try Self.engine(), description: try ModelDescription.read(from: Self.folder))
        let app = buildApplication(configuration: configuration, host: host, logger: Fixture.logger)
        try await app.test(.router) { client in try await test(client) }
    }

    @Test func plainAnswersCarryReasoningContentAndTheAnswerApart() async throws {
        let engine = try Self.engine()
        var parameters = greedy(20, engine: engine)
        parameters.thinking.maxReasoningTokens = 6
        let expected = try await engine.complete(InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "How much?")],
                                                                          parameters: parameters))
        try await runThinking { client in
            let response = try await client.post(json: ["temperature": 0, "max_tokens": 20, "max_reasoning_tokens": 6,
                                                        "messages": [user("How much?")]])
            #expect(response.status == .ok, "\(response.raw)")
            let message = try #require(response.choice["message"] as? [String: Any])
            #expect(message["reasoning_content"] as? String == expected.reasoning)
            #expect(message["content"] as? String == expected.text)
            #expect(!(expected.reasoning ?? "").isEmpty && !expected.text.isEmpty)
            let details = try #require(response.usage["completion_tokens_details"] as? [String: Any])
            #expect(details["reasoning_tokens"] as? Int == expected.usage.reasoningTokens)
            #expect(expected.usage.reasoningTokens > 6)
        }
    }

    @Test func streamsSendReasoningDeltasBeforeContentDeltas() async throws {
        try await runThinking { client in
            let body: [String: Any] = ["temperature": 0, "max_tokens": 20, "max_reasoning_tokens": 6, "messages": [user("How much?")]]
            let plain = try await client.post(json: body)
            var streamed = body
            streamed["stream"] = true
            let response = try await client.post(json: streamed)
            #expect(response.status == .ok)
            let deltas = response.chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
            let reasoning = deltas.compactMap { $0["reasoning_content"] as? String }
            let content = deltas.compactMap { $0["content"] as? String }
            let message = try #require(plain.choice["message"] as? [String: Any])
            #expect(reasoning.joined() == message["reasoning_content"] as? String)
            #expect(content.joined() == message["content"] as? String)
            // All reasoning first; no delta carries both.
            let lastReasoning = deltas.lastIndex { $0["reasoning_content"] != nil } ?? -1
            let firstAnswer = deltas.firstIndex { ($0["content"] as? String).map { !$0.isEmpty } ?? false } ?? deltas.count
            #expect(lastReasoning < firstAnswer)
            #expect(!deltas.contains { $0["reasoning_content"] != nil && $0["content"] != nil })
        }
    }

    @Test func thinkingCanBeTurnedOffPerRequest() async throws {
        try await runThinking { client in
            for body: [String: Any] in [
                ["temperature": 0, "max_tokens": 6, "chat_template_kwargs": ["enable_thinking": false], "messages": [user("Hi")]],
                ["temperature": 0, "max_tokens": 6, "enable_thinking": false, "messages": [user("Hi")]],
            ] {
                let response = try await client.post(json: body)
                #expect(response.status == .ok)
                let message = try #require(response.choice["message"] as? [String: Any])
                #expect(message["reasoning_content"] == nil, "\(response.raw)")
                #expect((response.usage["completion_tokens_details"] as? [String: Any])?["reasoning_tokens"] as? Int == 0)
            }
            let contradiction = try await client.post(json: ["enable_thinking": true, "chat_template_kwargs": ["enable_thinking": false],
                                                            "messages": [user("Hi")]])
            expectOpenAIError(contradiction, .badRequest)
            #expect(contradiction.errorParam == "enable_thinking")
            let negative = try await client.post(json: ["max_reasoning_tokens": -1, "messages": [user("Hi")]])
            expectOpenAIError(negative, .badRequest)
            #expect(negative.errorParam == "max_reasoning_tokens")
        }
    }

    @Test func earlierReasoningIsAcceptedAndLeftOutOfThePrompt() async throws {
        try await runThinking { client in
            let history: [[String: Any]] = [user("Q1"), ["role": "assistant", "content": "A1", "reasoning_content": "long thoughts"], user("Q2")]
            let without: [[String: Any]] = [user("Q1"), ["role": "assistant", "content": "A1"], user("Q2")]
            let a = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": history])
            let b = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": without])
            #expect(a.status == .ok && b.status == .ok)
            // The Thinking template drops reasoning of answered turns: the same prompt either way.
            #expect(a.usage["prompt_tokens"] as? Int == b.usage["prompt_tokens"] as? Int)
            #expect((a.choice["message"] as? [String: Any])?["reasoning_content"] as? String
                    == (b.choice["message"] as? [String: Any])?["reasoning_content"] as? String)
        }
    }

    @Test func modelsAndHealthSayWhatIsServed() async throws {
        try await runThinking { client in
            let models = try await client.get("/v1/models")
            let entry = try #require((models.json["data"] as? [[String: Any]])?.first)
            let info = try #require(entry["postlens"] as? [String: Any])
            #expect(info["thinking"] as? Bool == true && info["variant"] as? String == "thinking")
            #expect((info["vision"] as? [String: Any])?["deepstack_layers"] as? [Int] == [1, 2, 3])
            let health = try await client.get("/health")
            #expect((health.json["model_info"] as? [String: Any])?["thinking"] as? Bool == true)
        }
    }

    @Test func anInstructModelRefusesToThinkWithAPreciseError() async throws {
        try await runApp { client in
            let on = try await client.post(json: ["chat_template_kwargs": ["enable_thinking": true], "messages": [user("Hi")]])
            expectOpenAIError(on, .badRequest)
            #expect(on.errorParam == "chat_template_kwargs.enable_thinking")
            #expect(on.errorMessage.contains("no thinking mode") && on.errorMessage.contains("Thinking"))
            let budget = try await client.post(json: ["max_reasoning_tokens": 10, "messages": [user("Hi")]])
            expectOpenAIError(budget, .badRequest)
            #expect(budget.errorParam == "max_reasoning_tokens")
            // Off is what an Instruct model does anyway: accepted.
            let off = try await client.post(json: ["max_tokens": 2, "chat_template_kwargs": ["enable_thinking": false], "messages": [user("Hi")]])
            #expect(off.status == .ok)
            #expect((off.choice["message"] as? [String: Any])?.keys.contains("reasoning_content") == false)
        }
    }
}
