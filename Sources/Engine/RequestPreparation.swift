import Dispatch
import Foundation
import Qwen3VL

/// A request with everything done that needs no model: the chat template rendered, text tokenized, images
/// resized and patchified, the length checked, the JSON grammar compiled and its KV rows reserved.
struct PreparedRequest: @unchecked Sendable {
    let prompt: PreparedPrompt
    /// Tokens that may be generated after the prompt (`max_tokens`, bounded by the context).
    let maxNew: Int
    let grammar: GrammarMatcher?
    /// Set when the prompt ends inside a think block (a thinking model thinking).
    let reasoning: ReasoningPlan?
    /// Released when the request's job is gone.
    let reservation: KVBudget.Reservation?
    let preprocessMs: Double
}

extension Generator {
    /// Prepares a request on the calling thread (the engine's preparation queue, never the model thread), cheapest
    /// refusals first: text that cannot fit the context is refused before it is tokenized, the tokenized prompt
    /// before its images are patchified, a schema before any model work. `isCancelled` is polled between the steps
    /// and inside the schema compile.
    func prepare(_ request: InferenceEngine.Request, limits: SchemaLimits, kvBudget: KVBudget?,
                 isCancelled: @escaping () -> Bool) throws -> PreparedRequest {
        let clock = DispatchTime.now()
        // Text of n bytes encodes to at least n / longest-token tokens: far too much text is refused untokenized.
        let textBytes = request.messages.reduce(0) { sum, message in
            message.content.reduce(sum) { if case .text(let t) = $1 { return $0 + t.utf8.count } else { return $0 } }
        }
        let fewestTokens = textBytes / processor.tokenizer.longestTextTokenBytes
        if fewestTokens >= contextLimit { throw PromptError.tooLong(tokens: fewestTokens, limit: contextLimit) }
        if isCancelled() { throw CancellationError() }

        let prompt = try processor.prepare(request.messages, images: request.images, minPixels: request.minPixels,
                                           maxPixels: request.maxPixels, thinking: request.parameters.thinking.enabled)
        let maxNew = try budget(for: prompt, request.parameters)
        if isCancelled() { throw CancellationError() }
        let grammar = try request.parameters.responseFormat.map { try makeMatcher($0, limits: limits, isCancelled: isCancelled) }
        let reservation = try kvBudget?.reserve(tokens: prompt.tokens.count + maxNew)
        let reasoning = ReasoningPlan.detect(prompt: prompt.tokens, tokenizer: processor.tokenizer, parameters: request.parameters.thinking)
        return PreparedRequest(prompt: prompt, maxNew: maxNew, grammar: grammar, reasoning: reasoning, reservation: reservation,
                               preprocessMs: milliseconds(since: clock))
    }
}
