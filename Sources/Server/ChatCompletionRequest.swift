import Foundation
import JSON

/// `POST /v1/chat/completions` as OpenAI's SDKs send it, read from the body parsed once (`RequestBody.parse`).
/// Unknown fields are ignored; a field of the wrong type is a 400 whose `param` is its path
/// (`messages[1].content[0].image_url.url`). `max_pixels` / `min_pixels` are PostLens extensions; thinking models
/// take vLLM's `chat_template_kwargs.enable_thinking` (also accepted at the top level) and PostLens's
/// `max_reasoning_tokens`.
struct ChatCompletionRequest: Sendable {
    var model: String?
    var messages: [Message]
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var repetitionPenalty: Double?
    var seed: Int64?
    var stop: [String]?
    var n: Int?
    var stream: Bool?
    var includeUsage: Bool?
    var logprobs: Bool?
    var topLogprobs: Int?
    var user: String?
    var maxPixels: Int?
    var minPixels: Int?
    /// Thinking models: false answers without reasoning (nil: the template's default, which thinks).
    var enableThinking: Bool?
    /// Where `enableThinking` came from, for errors.
    var enableThinkingParam = "chat_template_kwargs.enable_thinking"
    var maxReasoningTokens: Int?

    struct Message: Sendable {
        var role: Role
        /// nil when absent or null (allowed for assistant messages only; `prepareMessages` checks).
        var content: Content?
        var name: String?
        /// An earlier answer's reasoning (`reasoning_content`, as vLLM and llama.cpp return it).
        var reasoningContent: String?
    }

    /// OpenAI roles; `developer` is the newer name of `system`.
    enum Role: String, Sendable {
        case system, developer, user, assistant, tool
    }

    /// Message content: a string, or an array of text and image parts.
    enum Content: Sendable {
        case text(String)
        case parts([Part])
    }

    /// `{"type": "text", "text": ...}` or `{"type": "image_url", "image_url": {"url": ..., "detail": ...}}`.
    struct Part: Sendable {
        var type: String
        var text: String?
        var imageURL: ImageURL?
    }

    struct ImageURL: Sendable {
        var url: String
        var detail: Detail?
    }

    enum Detail: String, Sendable {
        case low, high, auto
    }

    /// Reads the request from the parsed body. Throws `JSONReadError` naming the field.
    init(_ body: JSONReader) throws(JSONReadError) {
        guard case .object = body.value else { throw body.mismatch("a JSON object with 'messages'") }
        model = try body.optionalString("model")
        let list = try body.required("messages")
        guard case .array = list.value else { throw list.mismatch("an array of messages") }
        messages = []
        for message in try list.array() { messages.append(try Message(message)) }
        maxTokens = try body.optionalInt("max_tokens")
        maxCompletionTokens = try body.optionalInt("max_completion_tokens")
        temperature = try body.optionalDouble("temperature")
        topP = try body.optionalDouble("top_p")
        topK = try body.optionalInt("top_k")
        minP = try body.optionalDouble("min_p")
        presencePenalty = try body.optionalDouble("presence_penalty")
        frequencyPenalty = try body.optionalDouble("frequency_penalty")
        repetitionPenalty = try body.optionalDouble("repetition_penalty")
        if let node = try body.optional("seed") {
            guard case .number(let n) = node.value, let value = Int64(n.text) else { throw node.mismatch("a 64-bit integer") }
            seed = value
        }
        if let node = try body.optional("stop") {
            switch node.value {
            case .string(let one): stop = [one]
            case .array:
                var values: [String] = []
                for element in try node.array() {
                    guard case .string(let s) = element.value else { throw node.mismatch("a string or an array of strings") }
                    values.append(s)
                }
                stop = values
            default: throw node.mismatch("a string or an array of strings")
            }
        }
        n = try body.optionalInt("n")
        stream = try body.optionalBool("stream")
        includeUsage = try body.optional("stream_options")?.optionalBool("include_usage")
        logprobs = try body.optionalBool("logprobs")
        topLogprobs = try body.optionalInt("top_logprobs")
        user = try body.optionalString("user")
        maxPixels = try body.optionalInt("max_pixels")
        minPixels = try body.optionalInt("min_pixels")
        if let kwargs = try body.optional("chat_template_kwargs") {
            guard case .object = kwargs.value else { throw kwargs.mismatch("an object") }
            enableThinking = try kwargs.optionalBool("enable_thinking")
        }
        if let topLevel = try body.optionalBool("enable_thinking") {
            if let nested = enableThinking, nested != topLevel {
                throw try body.required("enable_thinking").invalid("contradicts chat_template_kwargs.enable_thinking")
            }
            enableThinking = topLevel
            enableThinkingParam = "enable_thinking"
        }
        maxReasoningTokens = try body.optionalInt("max_reasoning_tokens")
    }
}

extension ChatCompletionRequest.Message {
    init(_ node: JSONReader) throws(JSONReadError) {
        guard case .object = node.value else { throw node.mismatch("a message object with 'role' and 'content'") }
        let roleNode = try node.required("role")
        let roleName = try roleNode.string()
        guard let role = ChatCompletionRequest.Role(rawValue: roleName) else {
            throw roleNode.invalid("unknown role '\(roleName)'; use system, developer, user, assistant or tool")
        }
        self.role = role
        name = try node.optionalString("name")
        reasoningContent = try node.optionalString("reasoning_content")
        guard let contentNode = try node.optional("content") else { content = nil; return }
        switch contentNode.value {
        case .string(let text):
            content = .text(text)
        case .array:
            var parts: [ChatCompletionRequest.Part] = []
            for part in try contentNode.array() { parts.append(try ChatCompletionRequest.Part(part)) }
            content = .parts(parts)
        default:
            throw contentNode.mismatch("a string or an array of content parts")
        }
    }
}

extension ChatCompletionRequest.Part {
    init(_ node: JSONReader) throws(JSONReadError) {
        guard case .object = node.value else { throw node.mismatch("a content part object with 'type'") }
        type = try node.required("type").string()
        text = try node.optionalString("text")
        imageURL = nil
        guard let image = try node.optional("image_url") else { return }
        // Some clients send `"image_url": "data:..."` (the older shape); accept it.
        if case .string(let url) = image.value {
            imageURL = .init(url: url, detail: nil)
            return
        }
        let url = try image.required("url").string()
        var detail: ChatCompletionRequest.Detail?
        if let node = try image.optional("detail") {
            let name = try node.string()
            guard let value = ChatCompletionRequest.Detail(rawValue: name) else { throw node.invalid("must be \"low\", \"high\" or \"auto\"") }
            detail = value
        }
        imageURL = .init(url: url, detail: detail)
    }
}

extension ServerError {
    /// A field that is missing or has the wrong type: a 400 whose `param` is its path.
    init(_ error: JSONReadError) {
        self = .invalidRequest(error.description, param: error.path.isEmpty ? nil : error.path)
    }
}
