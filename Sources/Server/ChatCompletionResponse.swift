import Engine
import Foundation

// OpenAI's response shapes. Optional fields that OpenAI sends as `null` are encoded as `null`, not left out.

/// `object: "chat.completion"`.
struct ChatCompletion: Encodable {
    let id: String
    let object = "chat.completion"
    let created: Int
    let model: String
    let choices: [Choice]
    let usage: UsageBody

    struct Choice: Encodable {
        let index: Int
        let message: Message
        let finishReason: String
        let logprobs: ChoiceLogprobs?

        enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(message, forKey: .message)
            try c.encode(logprobs, forKey: .logprobs)
            try c.encode(finishReason, forKey: .finishReason)
        }
    }

    struct Message: Encodable {
        let role = "assistant"
        let content: String
        /// A thinking model's think block (vLLM's and llama.cpp's `reasoning_content`); absent for other models.
        var reasoningContent: String? = nil
        enum CodingKeys: String, CodingKey { case role, content, refusal, reasoningContent = "reasoning_content" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(role, forKey: .role)
            try c.encode(content, forKey: .content)
            try c.encodeIfPresent(reasoningContent, forKey: .reasoningContent)
            try c.encodeNil(forKey: .refusal)
        }
    }
}

/// `object: "chat.completion.chunk"`, one per SSE event.
struct ChatCompletionChunk: Encodable {
    let id: String
    let object = "chat.completion.chunk"
    let created: Int
    let model: String
    let choices: [Choice]
    /// Present (as `null` until the last chunk) only when `stream_options.include_usage` is set.
    let usage: UsageBody?
    let includeUsage: Bool

    struct Choice: Encodable {
        let index: Int
        let delta: Delta
        let logprobs: ChoiceLogprobs?
        let finishReason: String?

        enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(delta, forKey: .delta)
            try c.encode(logprobs, forKey: .logprobs)
            try c.encode(finishReason, forKey: .finishReason)
        }
    }

    struct Delta: Encodable {
        var role: String?
        var content: String?
        var reasoningContent: String?
        enum CodingKeys: String, CodingKey { case role, content, reasoningContent = "reasoning_content" }
    }

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        if includeUsage { try c.encode(usage, forKey: .usage) }
    }
}

/// `logprobs: {"content": [...]}`.
struct ChoiceLogprobs: Encodable {
    let content: [Entry]

    struct Entry: Encodable {
        let token: String
        let logprob: Float
        let bytes: [Int]
        let topLogprobs: [Alternative]
        enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }
    }

    struct Alternative: Encodable {
        let token: String
        let logprob: Float
        let bytes: [Int]
    }

    init(_ logprobs: [TokenLogprob]) {
        content = logprobs.map { entry in
            Entry(token: entry.token, logprob: finite(entry.logprob), bytes: entry.bytes.map(Int.init),
                  topLogprobs: entry.top.map { Alternative(token: $0.token, logprob: finite($0.logprob), bytes: $0.bytes.map(Int.init)) })
        }
    }
}

/// JSON has no infinities: an impossible token reports OpenAI's floor of −9999.
private func finite(_ value: Float) -> Float { value.isFinite ? value : -9999 }

/// `usage`, with PostLens timings under `postlens` (SDKs keep unknown fields as extras).
struct UsageBody: Encodable {
    let promptTokens: Int
    let completionTokens: Int
    let totalTokens: Int
    let promptTokensDetails: PromptDetails
    let completionTokensDetails: CompletionDetails
    let postlens: Extension

    struct PromptDetails: Encodable {
        let cachedTokens: Int
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }

    /// OpenAI's `completion_tokens_details`: the tokens of the think block (0 for models that do not think).
    struct CompletionDetails: Encodable {
        let reasoningTokens: Int
        enum CodingKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
    }

    struct Extension: Encodable {
        let imageTokens: Int
        let timeToFirstTokenMs: Double
        let preprocessMs: Double
        let visionMs: Double
        let prefillMs: Double
        let decodeMs: Double
        let decodeTokensPerSecond: Double
        enum CodingKeys: String, CodingKey {
            case imageTokens = "image_tokens", timeToFirstTokenMs = "ttft_ms", preprocessMs = "preprocess_ms"
            case visionMs = "vision_ms", prefillMs = "prefill_ms", decodeMs = "decode_ms"
            case decodeTokensPerSecond = "decode_tokens_per_s"
        }
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details", completionTokensDetails = "completion_tokens_details", postlens
    }

    init(_ result: GenerationResult) {
        let u = result.usage, t = result.timings
        promptTokens = u.promptTokens
        completionTokens = u.completionTokens
        totalTokens = u.totalTokens
        promptTokensDetails = PromptDetails(cachedTokens: u.cachedPromptTokens)
        completionTokensDetails = CompletionDetails(reasoningTokens: u.reasoningTokens)
        func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
        postlens = Extension(imageTokens: u.imageTokens, timeToFirstTokenMs: round3(t.timeToFirstTokenMs),
                             preprocessMs: round3(t.preprocessMs), visionMs: round3(t.visionMs),
                             prefillMs: round3(t.prefillMs), decodeMs: round3(t.decodeMs),
                             decodeTokensPerSecond: round3(t.decodeTokensPerSecond))
    }
}

/// OpenAI's `finish_reason` for ours (a cancelled request has no reader left; `stop` keeps SDKs happy).
func openAIFinishReason(_ reason: FinishReason) -> String {
    switch reason {
    case .stop, .cancelled: return "stop"
    // A loop cut by the repetition guard is an answer cut short, as at max_tokens.
    case .length, .repetition: return "length"
    }
}

/// The encoder of every JSON body: URLs and paths in messages stay readable (`docs/api.md`, not `docs\/api.md`).
func makeJSONEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    return encoder
}
