import Foundation
import Testing
import Imaging
import Qwen3VL
@testable import Engine

enum TinyModel {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/tiny")
    static let engine: InferenceEngine = try! InferenceEngine(directory: directory, format: .f32)

    static func referenceCase(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent("reference/cases.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (root["cases"] as! [String: Any])[name] as! [String: Any]
    }

    static func image(_ name: String) throws -> RGBImage {
        try ImageDecoder.decode(Data(contentsOf: directory.appendingPathComponent("reference/\(name)")))
    }

    static func greedy(_ maxTokens: Int) -> GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = maxTokens
        return p
    }
}

@Test func greedyGenerationReproducesTheReference() async throws {
    let info = try TinyModel.referenceCase("one_image")
    let request = InferenceEngine.Request(
        messages: [ChatMessage(role: .user, content: [.image, .text("Describe this image.")])],
        images: [try TinyModel.image("img_a.png")], parameters: TinyModel.greedy(16))
    var streamed = ""
    var result: GenerationResult?
    for try await event in TinyModel.engine.generate(request) {
        switch event {
        case .delta(let text, _, _): streamed += text
        case .reasoning: Issue.record("an Instruct model's answer has no reasoning")
        case .finished(let r): result = r
        }
    }
    let r = try #require(result)
    #expect(r.tokenIDs == info["greedy_ids"] as! [Int])
    #expect(r.text == info["greedy_text"] as! String)
    #expect(streamed == r.text)
    #expect(r.finishReason == .length)
    #expect(r.usage.promptTokens == info["L"] as! Int)
    #expect(r.usage.imageTokens == info["M"] as! Int)
    #expect(r.usage.completionTokens == 16)
}

@Test func cancellationStopsWithinOneStep() throws {
    let engine = TinyModel.engine
    let prompt = try engine.processor.prepare([ChatMessage(role: .user, text: "Tell me a long story.")], images: [])
    var deltas = 0
    let result = try engine.generator.generate(prompt, parameters: TinyModel.greedy(200),
                                               isCancelled: { deltas >= 3 },
                                               emit: { if case .delta(_, let ids, _) = $0, !ids.isEmpty { deltas += 1 } })
    #expect(result.finishReason == .cancelled)
    #expect(result.tokenIDs.count == 3)
}

@Test func droppingTheStreamCancelsTheRequest() async throws {
    let engine = TinyModel.engine
    let request = InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "Count to one thousand.")],
                                          parameters: TinyModel.greedy(100_000))
    var seen = 0
    for try await event in engine.generate(request) {
        if case .delta = event { seen += 1 }
        if seen == 2 { break }
    }
    // The engine's queue is serial: a follow-up request completes only if the first one stopped.
    let follow = try await engine.complete(InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "hi")],
                                                                   parameters: TinyModel.greedy(2)))
    #expect(follow.tokenIDs.count == 2)
}

@Test func stopStringsEndGenerationAndAreNotReturned() async throws {
    let info = try TinyModel.referenceCase("one_image")
    let full = info["greedy_text"] as! String
    // A stop string taken from the middle of the known greedy answer.
    let start = full.index(full.startIndex, offsetBy: 10)
    let stop = String(full[start..<full.index(start, offsetBy: 4)])
    var parameters = TinyModel.greedy(16)
    parameters.stop = [stop]
    let r = try await TinyModel.engine.complete(InferenceEngine.Request(
        messages: [ChatMessage(role: .user, content: [.image, .text("Describe this image.")])],
        images: [try TinyModel.image("img_a.png")], parameters: parameters))
    #expect(r.finishReason == .stop)
    #expect(r.text == String(full[..<full.range(of: stop)!.lowerBound]))
}

@Test func logprobsAreReportedPerToken() async throws {
    var parameters = TinyModel.greedy(5)
    parameters.logprobs = true
    parameters.topLogprobs = 3
    let r = try await TinyModel.engine.complete(InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "Hello")],
                                                                        parameters: parameters))
    #expect(r.logprobs.count == 5)
    for (entry, id) in zip(r.logprobs, r.tokenIDs) {
        #expect(entry.id == id)
        #expect(entry.logprob <= 0)
        #expect(entry.top.count == 3)
        #expect(entry.top[0].id == id)  // greedy picks the most likely token
        #expect(entry.top[0].logprob >= entry.top[1].logprob)
    }
}

@Test func samplingWithASeedIsReproducible() async throws {
    var parameters = GenerationParameters.defaults(for: TinyModel.engine.model)
    parameters.maxTokens = 12
    parameters.sampling.seed = 2026
    #expect(parameters.sampling.temperature == 0.7)  // from generation_config.json
    let request = InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "Write a slogan")], parameters: parameters)
    let a = try await TinyModel.engine.complete(request)
    let b = try await TinyModel.engine.complete(request)
    #expect(a.tokenIDs == b.tokenIDs)
}

@Test func overlongPromptIsAClearError() throws {
    let engine = InferenceEngine(model: TinyModel.engine.model, processor: TinyModel.engine.processor, contextLimit: 20)
    let prompt = try engine.processor.prepare([ChatMessage(role: .user, text: String(repeating: "word ", count: 50))], images: [])
    #expect(throws: PromptError.self) { try engine.generator.generate(prompt, parameters: TinyModel.greedy(4)) }
}
