import Foundation
import Qwen3VL
import Testing
@testable import Engine

/// Free text that loops ends (`RepetitionGuard`), and only when it loops.
@Suite struct RepetitionGuardTests {
    let guardrail = RepetitionGuard()

    @Test func aBlockRepeatedOverTheSpanIsALoop() {
        #expect(guardrail.loops(Array(repeating: [7, 8, 9], count: 22).flatMap { $0 }))   // 66 tokens, period 3
        #expect(guardrail.loops(Array(repeating: 5, count: 64)))                         // one token, 64 times
        #expect(guardrail.loops([1, 2, 3] + Array(repeating: Array(0..<40), count: 4).flatMap { $0 }))  // period 40, 4 times
    }

    @Test func shortRepeatsAndAlmostLoopsAreNot() {
        #expect(!guardrail.loops(Array(repeating: 5, count: 63)))                        // under the span
        #expect(!guardrail.loops(Array(repeating: Array(0..<40), count: 3).flatMap { $0 }))  // a line three times
        var almost = Array(repeating: [7, 8, 9], count: 30).flatMap { $0 }
        almost[almost.count - 10] = 1                                                    // broken inside the span
        #expect(!guardrail.loops(almost))
        #expect(!guardrail.loops(Array(0..<500)))
        #expect(!guardrail.loops(Array(repeating: Array(0..<70), count: 4).flatMap { $0 }))  // a period past maxPeriod
    }

    /// The tiny random model, greedy as `ask --temperature 0` runs it, loops on "Describe this.": with the guard the
    /// answer ends early with `.repetition` (its tokens the start of the unguarded run, its tail a loop); without it the
    /// same run goes on to max_tokens.
    @Test func theEngineEndsALoopingAnswer() async throws {
        var parameters = GenerationParameters.defaults(for: TinyModel.engine.model)
        parameters.maxTokens = 600
        parameters.sampling.temperature = 0
        let messages = [ChatMessage(role: .user, text: "Describe this.")]
        let free = try await TinyModel.engine.complete(InferenceEngine.Request(messages: messages, parameters: parameters))
        #expect(free.finishReason == .length && free.tokenIDs.count == 600)
        parameters.repetitionGuard = RepetitionGuard()
        let guarded = try await TinyModel.engine.complete(InferenceEngine.Request(messages: messages, parameters: parameters))
        #expect(guarded.finishReason == .repetition)
        #expect(guarded.tokenIDs.count < 600 && guarded.tokenIDs.count >= guardrail.minSpan)
        #expect(Array(free.tokenIDs.prefix(guarded.tokenIDs.count)) == guarded.tokenIDs)
        #expect(guardrail.loops(guarded.tokenIDs) && !guardrail.loops(guarded.tokenIDs.dropLast()))
    }
}
