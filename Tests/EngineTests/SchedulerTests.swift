import Foundation
import Testing
import Imaging
import Qwen3VL
@testable import Engine

/// Several requests at once share decode steps; each answer must equal the same request run alone.
@Test func concurrentRequestsMatchOneAtATime() async throws {
    let engine = TinyModel.engine
    let questions = ["Describe a red fox.", "你好，请介绍一下这个产品。", "List three colors.", "What is 2+2?", "Write a haiku.", "Summarize: sale 50% off"]
    let requests = questions.map { q in
        InferenceEngine.Request(messages: [ChatMessage(role: .user, text: q)], parameters: TinyModel.greedy(12))
    }
    var alone: [[Int]] = []
    for request in requests {
        let prompt = try engine.processor.prepare(request.messages, images: [])
        alone.append(try engine.generator.generate(prompt, parameters: request.parameters).tokenIDs)
    }
    let together = try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
        for (i, request) in requests.enumerated() {
            group.addTask { (i, try await engine.complete(request).tokenIDs) }
        }
        var out = [[Int]](repeating: [], count: requests.count)
        for try await (i, ids) in group { out[i] = ids }
        return out
    }
    #expect(together == alone)
}

/// A follow-up question about the same image reuses the image's KV and never re-encodes it.
@Test func followUpReusesPrefixAndVisionCaches() async throws {
    let engine = try InferenceEngine(directory: TinyModel.directory, format: .f32)  // fresh caches
    let image = try TinyModel.image("img_a.png")
    let first = [ChatMessage(role: .user, content: [.image, .text("Describe this image.")])]
    let r1 = try await engine.complete(InferenceEngine.Request(messages: first, images: [image], parameters: TinyModel.greedy(6)))
    #expect(r1.usage.cachedPromptTokens == 0)
    let followUp = first + [ChatMessage(role: .assistant, text: r1.text), ChatMessage(role: .user, text: "What colors are in it?")]
    let r2 = try await engine.complete(InferenceEngine.Request(messages: followUp, images: [image], parameters: TinyModel.greedy(6)))
    // Everything up to the end of the first answer's turn was cached (the image included).
    #expect(r2.usage.cachedPromptTokens > r1.usage.promptTokens)
    let stats = engine.statistics()
    #expect(stats.prefixCache.hits == 1)
    #expect(stats.visionCache.hits == 0)  // the image's rows came with the prefix: no vision work at all
    // Same answer as without any cache.
    let prompt = try engine.processor.prepare(followUp, images: [image])
    let direct = try engine.generator.generate(prompt, parameters: TinyModel.greedy(6))
    #expect(r2.tokenIDs == direct.tokenIDs)

    // The same image with a different question: prefix up to the image is reused, features too.
    let other = [ChatMessage(role: .user, content: [.image, .text("Is there text?")])]
    let r3 = try await engine.complete(InferenceEngine.Request(messages: other, images: [image], parameters: TinyModel.greedy(6)))
    let direct3 = try engine.generator.generate(try engine.processor.prepare(other, images: [image]), parameters: TinyModel.greedy(6))
    #expect(r3.tokenIDs == direct3.tokenIDs)
    #expect(r3.usage.cachedPromptTokens > 0)
}

/// Two different pictures of the same size produce identical token ids; their keys must never be shared.
@Test func differentImagesOfTheSameSizeDoNotShareKV() async throws {
    let engine = try InferenceEngine(directory: TinyModel.directory, format: .f32)
    let a = try TinyModel.image("img_a.png")
    var b = a
    for i in stride(from: 0, to: b.pixels.count, by: 7) { b.pixels[i] = 255 &- b.pixels[i] }
    let question = "Describe this image."
    let messages = [ChatMessage(role: .user, content: [.image, .text(question)])]
    _ = try await engine.complete(InferenceEngine.Request(messages: messages, images: [a], parameters: TinyModel.greedy(4)))
    let rb = try await engine.complete(InferenceEngine.Request(messages: messages, images: [b], parameters: TinyModel.greedy(8)))
    let direct = try engine.generator.generate(try engine.processor.prepare(messages, images: [b]), parameters: TinyModel.greedy(8))
    #expect(rb.tokenIDs == direct.tokenIDs)
    #expect(rb.usage.cachedPromptTokens < 5)  // only the text before the image can be shared
}

@Test func prefixMatchingStopsAtADifferentImage() {
    let cache = PrefixCache(budgetBytes: 1 << 20, imageTokenID: 9)
    #expect(cache.matchLength([1, 2, 9, 9, 3], ["A"], [1, 2, 9, 9, 3, 4], ["A"]) == 5)
    #expect(cache.matchLength([1, 2, 9, 9, 3], ["A"], [1, 2, 9, 9, 3], ["B"]) == 2)
    #expect(cache.matchLength([1, 2, 3], [], [1, 5], []) == 1)
}

/// Constrained decoding through the batching scheduler: the answer parses and has the schema's keys.
@Test func scheduledRequestsHonourTheResponseFormat() async throws {
    let schema = try JSONSchema.parse(Data(#"{"type":"object","properties":{"verdict":{"enum":["allow","review","block"]},"score":{"type":"integer","minimum":0,"maximum":9}},"required":["verdict","score"],"additionalProperties":false}"#.utf8))
    var parameters = GenerationParameters()
    parameters.maxTokens = 40
    parameters.responseFormat = .jsonSchema(name: "check", schema: schema, strict: true)
    parameters.sampling.temperature = 1
    parameters.sampling.seed = 5
    let request = InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "Judge this post.")], parameters: parameters)
    let results = try await withThrowingTaskGroup(of: GenerationResult.self) { group in
        for _ in 0..<3 { group.addTask { try await TinyModel.engine.complete(request) } }
        var out: [GenerationResult] = []
        for try await r in group { out.append(r) }
        return out
    }
    for r in results where r.finishReason == .stop {
        let object = try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as! [String: Any]
        #expect(["allow", "review", "block"].contains(object["verdict"] as? String))
        #expect((0...9).contains(object["score"] as? Int ?? -1))
    }
    #expect(results.contains { $0.finishReason == .stop })
}

/// The same seeded request twice: the second starts from the stored prompt logits (nothing recomputed)
/// and samples exactly the same answer.
@Test func repeatedSeededRequestIsIdenticalAndFullyCached() async throws {
    let engine = try InferenceEngine(directory: TinyModel.directory, format: .q8)
    var parameters = GenerationParameters.defaults(for: engine.model)
    parameters.maxTokens = 16
    parameters.sampling.temperature = 1
    parameters.sampling.seed = 7
    let request = InferenceEngine.Request(messages: [ChatMessage(role: .user, content: [.image, .text("Write anything.")])],
                                          images: [try TinyModel.image("img_b.png")], parameters: parameters)
    let a = try await engine.complete(request)
    let b = try await engine.complete(request)
    #expect(a.tokenIDs == b.tokenIDs)
    #expect(b.usage.cachedPromptTokens == b.usage.promptTokens)
    #expect(b.timings.visionMs < 5)
}

/// With the smallest slices (one vision block or 16 prompt tokens per turn between decode steps), image
/// requests interleaved with generating text requests still give exactly the one-at-a-time answers.
@Test func slicedVisionAndPrefillKeepAnswersExact() async throws {
    let base = TinyModel.engine
    let engine = InferenceEngine(model: base.model, processor: base.processor, prefillSliceSeconds: 0)
    let text = InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "Tell me a long story about a fox.")],
                                       parameters: TinyModel.greedy(30))
    let images = try ["img_a.png", "img_b.png", "img_c.png"].map { try TinyModel.image($0) }
    let imageRequest = InferenceEngine.Request(
        messages: [ChatMessage(role: .user, content: [.image, .image, .text("Compare")]),
                   ChatMessage(role: .assistant, text: "They differ."),
                   ChatMessage(role: .user, content: [.image, .text("And this one?")])],
        images: images, parameters: TinyModel.greedy(8))
    func alone(_ r: InferenceEngine.Request) throws -> [Int] {
        try engine.generator.generate(try engine.processor.prepare(r.messages, images: r.images), parameters: r.parameters).tokenIDs
    }
    let expectedText = try alone(text), expectedImage = try alone(imageRequest)
    async let t = engine.complete(text)
    async let i = engine.complete(imageRequest)
    let (textResult, imageResult) = try await (t, i)
    #expect(textResult.tokenIDs == expectedText)
    #expect(imageResult.tokenIDs == expectedImage)
}
