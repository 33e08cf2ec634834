import Foundation
import Imaging
import JSON
import Qwen3VL
import Testing
import Tokenizer
@testable import Engine

/// Thinking models: the think block streams as `.reasoning`, the answer as `.delta`; `maxReasoningTokens` closes the
/// block for the model; a JSON constraint applies to the answer after it. On the `thinking` fixture (the 2B structure
/// with the real Qwen3-VL Thinking template; random weights, so it never closes the block by itself).
enum ThinkingModel {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/thinking")
    static let engine: InferenceEngine = try! InferenceEngine(directory: directory, format: .f32)
    static var tokenizer: Tokenizer { engine.processor.tokenizer }
    static var end: Int { tokenizer.tokenID("</think>")! }

    static func referenceCase(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent("reference/cases.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (root["cases"] as! [String: Any])[name] as! [String: Any]
    }

    struct Run {
        var result: GenerationResult
        var reasoningDeltas: [String] = []
        var deltas: [String] = []
        /// Whether every reasoning event came before the first answer event.
        var reasoningFirst = true
    }

    static func run(_ messages: [ChatMessage], images: [RGBImage] = [], _ parameters: GenerationParameters) async throws -> Run {
        var reasoning: [String] = [], deltas: [String] = [], order = true, result: GenerationResult?
        for try await event in engine.generate(InferenceEngine.Request(messages: messages, images: images, parameters: parameters)) {
            switch event {
            case .reasoning(let text, _):
                if !deltas.joined().isEmpty { order = false }
                reasoning.append(text)
            case .delta(let text, _, _): deltas.append(text)
            case .finished(let r): result = r
            }
        }
        return Run(result: try #require(result), reasoningDeltas: reasoning, deltas: deltas, reasoningFirst: order)
    }
}

func greedy(_ maxTokens: Int, budget: Int? = nil, thinking: Bool = true) -> GenerationParameters {
    var p = GenerationParameters()
    p.maxTokens = maxTokens
    p.thinking = ThinkingParameters(enabled: thinking, maxReasoningTokens: budget)
    return p
}

@Test func theThinkingTemplateIsDetectedAndItsGreedyReasoningIsTheReferences() async throws {
    #expect(ThinkingModel.engine.processor.template == .thinking)
    let info = try ThinkingModel.referenceCase("one_image")
    let image = try ImageDecoder.decode(Data(contentsOf: ThinkingModel.directory.appendingPathComponent("reference/img_a.png")))
    let run = try await ThinkingModel.run([ChatMessage(role: .user, content: [.image, .text("Describe this image.")])],
                                          images: [image], greedy(16))
    // transformers' greedy continuation of the same prompt (which ends in `<think>\n`): all of it is reasoning.
    #expect(run.result.tokenIDs == info["greedy_ids"] as! [Int])
    let reference = (info["greedy_text"] as! String)
    #expect(run.result.reasoning == reference.trimmingCharacters(in: CharacterSet(charactersIn: "\n")))
    #expect(run.result.text == "")
    #expect(run.reasoningDeltas.joined() == run.result.reasoning)
    #expect(run.result.usage.reasoningTokens == 16)
    #expect(run.result.finishReason == .length)
}

@Test func theBudgetClosesTheThinkBlockAndTheAnswerFollows() async throws {
    let messages = [ChatMessage(role: .user, text: "How much more expensive than last year?")]
    let run = try await ThinkingModel.run(messages, greedy(24, budget: 5))
    let ids = run.result.tokenIDs
    let newline = ThinkingModel.tokenizer.encode("\n", parseSpecialTokens: false)
    let separator = ThinkingModel.tokenizer.encode("\n\n", parseSpecialTokens: false)
    // Five reasoning tokens, then `\n</think>\n\n` written for the model, then the answer.
    #expect(Array(ids[5..<(5 + newline.count + 1 + separator.count)]) == newline + [ThinkingModel.end] + separator)
    #expect(ids.filter { $0 == ThinkingModel.end }.count == 1)
    #expect(run.result.usage.reasoningTokens == 5 + newline.count + 1)
    #expect(ids.count == 24 && run.result.finishReason == .length)
    #expect(!run.result.text.isEmpty && !run.result.text.hasPrefix("\n"))
    #expect(run.result.text == run.deltas.joined())
    #expect(run.result.reasoning == run.reasoningDeltas.joined())
    #expect(run.reasoningFirst)
    #expect(!(run.result.reasoning ?? "").contains("</think>") && !run.result.text.contains("</think>"))
    // The same tokens through the single-sequence generator (the scheduler's reference).
    let prompt = try ThinkingModel.engine.processor.prepare(messages, images: [])
    let single = try ThinkingModel.engine.generator.generate(prompt, parameters: greedy(24, budget: 5))
    #expect(single.tokenIDs == ids && single.text == run.result.text && single.reasoning == run.result.reasoning)
}

@Test func aZeroBudgetAndThinkingOffBothAnswerAtOnce() async throws {
    let messages = [ChatMessage(role: .user, text: "Hi")]
    let zero = try await ThinkingModel.run(messages, greedy(12, budget: 0))
    #expect(zero.result.reasoning == "")
    #expect(zero.result.tokenIDs.prefix(3).contains(ThinkingModel.end))
    #expect(!zero.result.text.isEmpty)
    // Off: the prompt itself closes the block (the Qwen3 way), so nothing of the answer is reasoning.
    let off = try await ThinkingModel.run(messages, greedy(12, thinking: false))
    #expect(off.result.reasoning == nil)
    #expect(off.reasoningDeltas.isEmpty)
    #expect(!off.result.tokenIDs.contains(ThinkingModel.end))
    #expect(off.result.usage.reasoningTokens == 0)
    // Both end the block with the same text: a zero budget writes in decode what "off" writes in the prompt
    // (the tokens differ only where BPE joins the prompt's "\n" with the next one).
    let offPrompt = try ThinkingModel.engine.processor.prepare(messages, images: [], thinking: false)
    let onPrompt = try ThinkingModel.engine.processor.prepare(messages, images: [])
    let closed = onPrompt.tokens + Array(zero.result.tokenIDs.prefix(3))
    #expect(ThinkingModel.tokenizer.decode(closed) == ThinkingModel.tokenizer.decode(offPrompt.tokens))
}

@Test func aJSONConstraintAppliesToTheAnswerAfterTheThinkBlock() async throws {
    var parameters = greedy(200, budget: 6)
    let schema = try JSONSchema.parse(JSONValue.parse(#"{"type": "object", "properties": {"digit": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["digit"], "additionalProperties": false}"#))
    parameters.responseFormat = .jsonSchema(name: "digit", schema: schema, strict: true)
    let run = try await ThinkingModel.run([ChatMessage(role: .user, text: "Pick a digit.")], parameters)
    // Free reasoning (the random model writes no JSON there), then an answer that is exactly the schema's JSON.
    #expect((run.result.reasoning ?? "").count > 0)
    #expect(run.result.finishReason == .stop)
    let answer = try JSONValue.parse(run.result.text)
    #expect(answer["digit"]?.intValue.map { (0...9).contains($0) } == true)
    #expect(answer.objectValue?.count == 1)
}

@Test func anInstructModelNeverReasons() async throws {
    let engine = try InferenceEngine(directory: ThinkingModel.directory.deletingLastPathComponent().appendingPathComponent("tiny"), format: .f32)
    var parameters = greedy(6, budget: 2)
    parameters.thinking.enabled = true
    let result = try await engine.complete(InferenceEngine.Request(messages: [ChatMessage(role: .user, text: "Hi")], parameters: parameters))
    #expect(result.reasoning == nil && result.usage.reasoningTokens == 0 && result.tokenIDs.count == 6)
}

// MARK: - The decoding state, driven with chosen logits

/// Logits that make `token` the argmax.
func logits(choosing token: Int, vocab: Int) -> [Float] {
    var l = [Float](repeating: 0, count: vocab)
    l[token] = 10
    return l
}

@Test func reasoningNewlinesAroundTheBlockAreNotReasoningAndStopStringsOnlyCutTheAnswer() throws {
    let tokenizer = ThinkingModel.tokenizer
    let vocab = ThinkingModel.engine.model.configuration.text.vocabSize
    let prompt = try ThinkingModel.engine.processor.prepare([ChatMessage(role: .user, text: "x")], images: []).tokens
    var parameters = greedy(40)
    parameters.stop = ["a"]
    let plan = try #require(ReasoningPlan.detect(prompt: prompt, tokenizer: tokenizer, parameters: parameters.thinking))
    var events: [GenerationEvent] = []
    let state = DecodingState(parameters: parameters, tokenizer: tokenizer, vocab: vocab, eos: [tokenizer.tokenID("<|im_end|>")!],
                              prompt: prompt, maxNew: 40, timings: Timings(), usage: Usage(), started: .now(),
                              reasoning: plan, emit: { events.append($0) })
    let nl = tokenizer.encode("\n", parseSpecialTokens: false)[0]
    let sequence = tokenizer.encode("\nbanana\n\n", parseSpecialTokens: false) + [ThinkingModel.end]
        + tokenizer.encode("\n\nbanana", parseSpecialTokens: false)
    for token in sequence {
        var l = logits(choosing: token, vocab: vocab)
        if state.step(&l) == nil { break }
    }
    let result = state.complete()
    // "a" is in the reasoning but only stops the answer: reasoning "banana" (no newlines around it), answer "b".
    #expect(result.reasoning == "banana")
    #expect(result.text == "b")
    #expect(result.finishReason == .stop)
    let reasoning = events.compactMap { if case .reasoning(let t, _) = $0 { return t } else { return nil } }.joined()
    #expect(reasoning == "banana")
    #expect(nl != ThinkingModel.end)
}

@Test func endingInsideTheBlockWhileJSONIsOwedClosesItForTheModel() throws {
    let tokenizer = ThinkingModel.tokenizer
    let vocab = ThinkingModel.engine.model.configuration.text.vocabSize
    let prompt = try ThinkingModel.engine.processor.prepare([ChatMessage(role: .user, text: "x")], images: []).tokens
    var parameters = greedy(40)
    parameters.responseFormat = .jsonObject
    let plan = try #require(ReasoningPlan.detect(prompt: prompt, tokenizer: tokenizer, parameters: parameters.thinking))
    let eos = tokenizer.tokenID("<|im_end|>")!
    let grammar = try ThinkingModel.engine.generator.makeMatcher(.jsonObject)
    let state = DecodingState(parameters: parameters, tokenizer: tokenizer, vocab: vocab, eos: [eos], prompt: prompt, maxNew: 40,
                              timings: Timings(), usage: Usage(), started: .now(), grammar: grammar, reasoning: plan, emit: { _ in })
    let thought = tokenizer.encode("hmm", parseSpecialTokens: false)[0]
    var l = logits(choosing: thought, vocab: vocab)
    _ = state.step(&l)
    l = logits(choosing: eos, vocab: vocab)
    // EOS in the block: instead of ending, the close is written (first its newline).
    #expect(state.step(&l) == plan.closeTokens[0])
    #expect(!state.isFinished)
    var fed: [Int] = []
    for _ in 1..<plan.closeTokens.count {
        l = logits(choosing: eos, vocab: vocab)
        fed.append(state.step(&l)!)
    }
    #expect(fed == Array(plan.closeTokens.dropFirst()))
    // Now the grammar holds: EOS stays masked until the JSON is complete. Preferring EOS, then "}", then "{", the
    // answer is the smallest object, and ends as soon as it is complete.
    let open = tokenizer.encode("{", parseSpecialTokens: false)[0], close = tokenizer.encode("}", parseSpecialTokens: false)[0]
    for _ in 0..<30 where !state.isFinished {
        l = [Float](repeating: 0, count: vocab)
        l[eos] = 10
        l[close] = 9
        l[open] = 8
        if state.step(&l) == nil { break }
    }
    let result = state.complete()
    #expect(result.finishReason == .stop)
    #expect(try JSONValue.parse(result.text) == .object([:]))
    #expect(result.reasoning == tokenizer.decode([thought]))
}
