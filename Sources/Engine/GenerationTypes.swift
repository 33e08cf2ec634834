import Foundation
import Qwen3VL

/// Everything that shapes one answer, besides the prompt.
public struct GenerationParameters: Sendable, Equatable {
    /// Upper bound on generated tokens.
    public var maxTokens: Int = 512
    public var sampling = SamplingParameters()
    /// User stop strings; generation ends before the first occurrence, which is not returned.
    public var stop: [String] = []
    /// Return the log-probability of each generated token.
    public var logprobs = false
    /// Also return this many most likely alternatives per token (0–20).
    public var topLogprobs = 0
    /// Constrain the answer to JSON (any object, or valid against a schema); nil for free text.
    /// User stop strings are not applied to constrained answers (they could cut the JSON).
    /// With a thinking model the constraint applies to the answer after the think block.
    public var responseFormat: ResponseFormat?
    /// Thinking models: whether to reason first, and how long (`ThinkingParameters`).
    public var thinking = ThinkingParameters()
    /// End a free-text answer that loops (`RepetitionGuard`); nil: no guard (the reference path, the golden tests).
    public var repetitionGuard: RepetitionGuard?

    public init() {}

    /// The model's recommended sampling (generation_config.json): temperature, top-k, top-p and
    /// repetition penalty, sampling only when `do_sample` is set.
    public static func defaults(for model: Qwen3VLModel) -> GenerationParameters {
        var parameters = GenerationParameters()
        let g = model.generation
        if g.doSample {
            parameters.sampling.temperature = g.temperature
            parameters.sampling.topK = g.topK
            parameters.sampling.topP = g.topP
        }
        parameters.sampling.repetitionPenalty = g.repetitionPenalty
        return parameters
    }
}

public enum FinishReason: String, Sendable, Codable {
    /// The model ended its answer (EOS) or a stop string was reached.
    case stop
    /// `maxTokens` or the context limit was reached.
    case length
    /// A free-text answer fell into a loop and was ended (`RepetitionGuard`).
    case repetition
    /// The caller went away.
    case cancelled
}

/// One alternative token with its log-probability (OpenAI's `top_logprobs` entries).
public struct TokenAlternative: Sendable, Equatable, Codable {
    public let token: String
    public let id: Int
    public let logprob: Float
    public let bytes: [UInt8]
}

/// The chosen token with its log-probability and the most likely alternatives.
public struct TokenLogprob: Sendable, Equatable, Codable {
    public let token: String
    public let id: Int
    public let logprob: Float
    public let bytes: [UInt8]
    public let top: [TokenAlternative]
}

public struct Usage: Sendable, Equatable, Codable {
    public var promptTokens = 0
    public var completionTokens = 0
    public var imageTokens = 0
    /// Prompt tokens whose KV came from the prefix cache instead of being computed.
    public var cachedPromptTokens = 0
    /// Completion tokens spent in the think block (its closing `</think>` included); 0 without one.
    public var reasoningTokens = 0
    public init(promptTokens: Int = 0, completionTokens: Int = 0, imageTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.imageTokens = imageTokens
    }
    public var totalTokens: Int { promptTokens + completionTokens }
}

/// Milliseconds spent in each phase.
public struct Timings: Sendable, Equatable, Codable {
    public var preprocessMs = 0.0
    public var visionMs = 0.0
    public var prefillMs = 0.0
    public var decodeMs = 0.0
    /// Request arrival to first token.
    public var timeToFirstTokenMs = 0.0
    public init() {}
    public var decodeTokensPerSecond: Double { decodeMs > 0 ? Double(max(0, decodeTokens - 1)) / (decodeMs / 1000) : 0 }
    public var decodeTokens = 0
    /// Time spent computing grammar masks (constrained decoding), included in `decodeMs`.
    public var grammarMs = 0.0
}

public struct GenerationResult: Sendable, Equatable {
    /// The answer (after the think block, when there was one).
    public var text: String
    public var tokenIDs: [Int]
    public var finishReason: FinishReason
    public var usage: Usage
    public var timings: Timings
    public var logprobs: [TokenLogprob]
    /// The think block's text (without `<think>`/`</think>` and surrounding newlines); nil when the prompt opened no
    /// think block (Instruct models, or thinking turned off).
    public var reasoning: String? = nil

    public init(text: String, tokenIDs: [Int], finishReason: FinishReason, usage: Usage, timings: Timings, logprobs: [TokenLogprob] = [],
                reasoning: String? = nil) {
        self.text = text
        self.tokenIDs = tokenIDs
        self.finishReason = finishReason
        self.usage = usage
        self.timings = timings
        self.logprobs = logprobs
        self.reasoning = reasoning
    }
}

/// What a generation stream yields.
public enum GenerationEvent: Sendable {
    /// New text (may be empty when a token completes no character yet) and the tokens behind it.
    case delta(text: String, tokenIDs: [Int], logprobs: [TokenLogprob])
    /// Reasoning text of a thinking model (inside its think block), before any `.delta` of the answer.
    case reasoning(text: String, tokenIDs: [Int])
    case finished(GenerationResult)
}

/// Monotonic milliseconds.
func milliseconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
}
