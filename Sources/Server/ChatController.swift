import Engine
import Foundation
import Hummingbird
import Imaging
import JSON
import Logging
import NIOCore
import Qwen3VL

/// `POST /v1/chat/completions`: OpenAI's chat API, streaming (SSE) or not, over the one engine.
struct ChatController<Context: ConnectionContext>: Sendable {
    let host: ModelHost
    let configuration: ServerConfiguration
    let gate: AdmissionGate
    let images: ImageSource
    let metrics: ServerMetrics
    let drain: ShutdownDrain
    /// Cancel a request whose client goes away (see `ConnectionWatchers`).
    let connections: ConnectionWatchers

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("/chat/completions", use: create)
        return routes
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        // The engine and the id it serves under, together (a model switch cannot pair one with the other's id).
        let (engine, served) = try host.ready()
        let body = try await readBody(request, context: context, limit: configuration.maxBodyBytes, timeout: configuration.clientTimeout)
        let bodyData = Data(buffer: body, byteTransferStrategy: .noCopy)
        let defaults = engine.defaultParameters
        let template = engine.chatTemplate
        let (chat, parameters) = try await Offload.run { [self] in
            // Parsed once; the request and its response_format are read from the same value.
            let root = JSONReader(try RequestJSON.parse(bodyData, limits: configuration.requestJSONLimits))
            let chat: ChatCompletionRequest
            do { chat = try ChatCompletionRequest(root) } catch let error as JSONReadError { throw ServerError(error) }
            var parameters = try generationParameters(chat, defaults: defaults, template: template, served: served)
            parameters.responseFormat = try ResponseFormatRequest.parse(root.value["response_format"])
            return (chat, parameters)
        }
        guard let ticket = gate.enter() else { throw ServerError.queueFull(limit: gate.limit) }
        // A client that goes away from here on cancels the work: a non-streaming answer's generation at the engine's
        // next step, a stream's up to its first token (after that, its body writer notices the failed write).
        let logger = context.logger
        // Only a live connection gets a write watchdog (router tests have a stand-in channel).
        let channel: (any Channel)? = context.channel.isActive ? context.channel : nil
        return try await connections.cancellingOnDisconnect(of: context) { [self, parameters] in
            try await respond(chat, parameters: parameters, engine: engine, served: served, ticket: ticket, channel: channel, logger: logger)
        }
    }

    private func respond(_ chat: ChatCompletionRequest, parameters: GenerationParameters, engine: any ChatEngine, served: String,
                         ticket: AdmissionGate.Ticket, channel: (any Channel)?, logger: Logger) async throws -> Response {
        let fetched = try await images.prefetchRemote(Self.imageURLs(chat))
        let preprocessor = engine.preprocessor
        let prepared = try await Offload.run { [self] in try prepareMessages(chat, preprocessor: preprocessor, fetched: fetched) }
        let engineRequest = InferenceEngine.Request(messages: prepared.messages, images: prepared.images, parameters: parameters,
                                                    minPixels: prepared.budget?.minPixels, maxPixels: prepared.budget?.maxPixels)
        var logger = logger
        logger[metadataKey: "stream"] = "\(chat.stream == true)"
        logger[metadataKey: "images"] = "\(prepared.images.count)"
        logger.debug("chat completion admitted", metadata: ["messages": "\(chat.messages.count)", "in_flight": "\(gate.inFlight)"])
        let meta = ResponseMeta(id: "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased(),
                                created: Int(Date().timeIntervalSince1970), model: served)
        let stream = engine.generate(engineRequest)
        if chat.stream == true {
            return try await streamingResponse(stream, meta: meta, includeUsage: chat.includeUsage == true,
                                               wantsLogprobs: parameters.logprobs, ticket: ticket, channel: channel, logger: logger)
        }
        return try await completeResponse(stream, meta: meta, wantsLogprobs: parameters.logprobs, ticket: ticket, logger: logger)
    }

    struct ResponseMeta: Sendable {
        let id: String
        let created: Int
        let model: String
    }

    // MARK: - Responses

    private func completeResponse(_ stream: AsyncThrowingStream<GenerationEvent, Error>, meta: ResponseMeta, wantsLogprobs: Bool,
                                  ticket: AdmissionGate.Ticket, logger: Logger) async throws -> Response {
        var result: GenerationResult?
        for try await event in stream {
            if case .finished(let r) = event { result = r }
        }
        withExtendedLifetime(ticket) {}
        // No result: the stream ended early because this task was cancelled (by the client going away, see `create`).
        guard let result else { throw CancellationError() }
        log(result, logger: logger)
        metrics.record(result, stream: false)
        let completion = ChatCompletion(
            id: meta.id, created: meta.created, model: meta.model,
            choices: [.init(index: 0, message: .init(content: result.text, reasoningContent: result.reasoning),
                            finishReason: openAIFinishReason(result.finishReason),
                            logprobs: wantsLogprobs ? ChoiceLogprobs(result.logprobs) : nil)],
            usage: UsageBody(result))
        let data = try makeJSONEncoder().encode(completion)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Server-sent events. The first engine event is awaited before the 200 goes out, so a prompt the engine
    /// refuses (too long, bad image) still gets its proper status. A write that fails (the client went away)
    /// ends the loop, which drops the engine stream and cancels the generation before its next step.
    /// A client that stops reading (its writes not taken within `--client-timeout`) has its connection closed, which
    /// ends the stream the same way, so it cannot hold its queue slot and KV reservation indefinitely.
    private func streamingResponse(_ stream: AsyncThrowingStream<GenerationEvent, Error>, meta: ResponseMeta, includeUsage: Bool,
                                   wantsLogprobs: Bool, ticket: AdmissionGate.Ticket, channel: (any Channel)?,
                                   logger: Logger) async throws -> Response {
        let timeout = configuration.clientTimeout
        let events = EventSource(drain.drainable(stream))
        let first = try await events.next()
        // No event at all: cancelled before the first token (by the client going away, see `create`).
        if first == nil { try Task.checkCancellation() }
        let body = ResponseBody { writer in
            _ = ticket  // held until the body is written or abandoned
            let encoder = makeJSONEncoder()
            /// One event, its write held to the client timeout.
            func send(_ value: some Encodable) async throws {
                let buffer = try ServerSentEvents.event(value, encoder: encoder)
                try await writeWithin(timeout, on: channel) { try await writer.write(buffer) }
            }
            func chunk(_ delta: ChatCompletionChunk.Delta, logprobs: [TokenLogprob]? = nil, finish: String? = nil) -> ChatCompletionChunk {
                ChatCompletionChunk(id: meta.id, created: meta.created, model: meta.model,
                                    choices: [.init(index: 0, delta: delta, logprobs: logprobs.map(ChoiceLogprobs.init),
                                                    finishReason: finish)],
                                    usage: nil, includeUsage: includeUsage)
            }
            var failure: (any Error)?
            do {
                try await send(chunk(.init(role: "assistant", content: ""), logprobs: nil))
                var event = first
                while let current = event {
                    switch current {
                    case let .delta(text, _, logprobs):
                        if !text.isEmpty || (wantsLogprobs && !logprobs.isEmpty) {
                            try await send(chunk(.init(content: text), logprobs: wantsLogprobs ? logprobs : nil))
                        }
                    case let .reasoning(text, _):
                        // vLLM's and llama.cpp's shape: the think block's text in `delta.reasoning_content`.
                        if !text.isEmpty { try await send(chunk(.init(reasoningContent: text))) }
                    case let .finished(result):
                        log(result, logger: logger)
                        metrics.record(result, stream: true)
                        try await send(chunk(.init(), finish: openAIFinishReason(result.finishReason)))
                        if includeUsage {
                            try await send(ChatCompletionChunk(id: meta.id, created: meta.created, model: meta.model, choices: [],
                                                               usage: UsageBody(result), includeUsage: true))
                        }
                    }
                    do { event = try await events.next() } catch { failure = error; event = nil }
                }
                if let failure {
                    // The engine failed after the headers went out: report it in-band, as OpenAI-compatible servers do.
                    if case ServerError.shuttingDown = failure {
                        logger.info("stream ended by the shutdown")
                    } else {
                        logger.error("generation failed mid-stream", metadata: ["error": "\(failure)"])
                    }
                    try await send(APIError(failure, retryAfter: configuration.retryAfterSeconds).body)
                }
            } catch {
                // A write failed: the client went away. Dropping the engine stream cancels the generation.
                events.cancel()
                logger.info("client went away; generation cancelled")
                throw error
            }
            try await writeWithin(timeout, on: channel) { try await writer.write(ServerSentEvents.done) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: ServerSentEvents.headers, body: body)
    }

    private func log(_ result: GenerationResult, logger: Logger) {
        logger.info("chat completion", metadata: [
            "prompt_tokens": "\(result.usage.promptTokens)", "image_tokens": "\(result.usage.imageTokens)",
            "completion_tokens": "\(result.usage.completionTokens)", "finish_reason": "\(result.finishReason.rawValue)",
            "ttft_ms": "\(Int(result.timings.timeToFirstTokenMs))",
            "decode_tokens_per_s": "\(Int(result.timings.decodeTokensPerSecond))",
        ])
    }

    // MARK: - Request → engine

    /// `served`: the id of the model answering (`model` must name it, or be left out).
    func generationParameters(_ chat: ChatCompletionRequest, defaults: GenerationParameters,
                              template: ChatTemplateKind = .instruct, served: String) throws -> GenerationParameters {
        if let model = chat.model, !model.isEmpty, model != served {
            if host.choices.contains(where: { $0.id == model }) { throw ServerError.modelNotLoaded(requested: model, served: served) }
            throw ServerError.unknownModel(model)
        }
        if let n = chat.n, n != 1 { throw ServerError.unsupportedN(n) }
        guard !chat.messages.isEmpty else { throw ServerError.invalidRequest("'messages' must not be empty", param: "messages") }
        // Bounded before anything is decoded, fetched or rendered.
        let parts = chat.messages.reduce(0) { sum, message in
            if case .parts(let list)? = message.content { return sum + max(1, list.count) }
            return sum + 1
        }
        guard parts <= configuration.maxContentParts else {
            throw ServerError.limit("the messages hold \(parts) content parts, more than the \(configuration.maxContentParts) one request may have",
                                    param: "messages")
        }
        let imageCount = Self.imageURLs(chat).count
        guard imageCount <= configuration.maxImagesPerRequest else { throw ServerError.tooManyImages(limit: configuration.maxImagesPerRequest) }
        func check(_ ok: Bool, _ param: String, _ rule: String) throws {
            if !ok { throw ServerError.invalidRequest("'\(param)' must be \(rule)", param: param) }
        }
        var p = defaults
        // Free text that loops (OCR reading one line over and over) ends instead of running to max_tokens; a JSON answer
        // is closed by its schema's bounds instead.
        p.repetitionGuard = RepetitionGuard()
        if let maxTokens = chat.maxCompletionTokens ?? chat.maxTokens {
            try check(maxTokens >= 1, chat.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens", "at least 1")
            p.maxTokens = maxTokens
        } else {
            p.maxTokens = configuration.defaultMaxTokens
        }
        if let t = chat.temperature {
            try check(t >= 0 && t <= 2, "temperature", "between 0 and 2")
            p.sampling.temperature = t
        }
        if let v = chat.topP {
            try check(v > 0 && v <= 1, "top_p", "in (0, 1]")
            p.sampling.topP = v
        }
        if let v = chat.topK {
            try check(v >= -1, "top_k", "-1 or 0 (off), or a positive count")
            guard v <= configuration.maxTopK else {
                throw ServerError.limit("'top_k' must be at most \(configuration.maxTopK) (-1 or 0 turn it off)", param: "top_k")
            }
            p.sampling.topK = max(0, v)
        }
        if let v = chat.minP {
            try check(v >= 0 && v <= 1, "min_p", "between 0 and 1")
            p.sampling.minP = v
        }
        if let v = chat.presencePenalty {
            try check(v >= -2 && v <= 2, "presence_penalty", "between -2 and 2")
            p.sampling.presencePenalty = v
        }
        if let v = chat.frequencyPenalty {
            try check(v >= -2 && v <= 2, "frequency_penalty", "between -2 and 2")
            p.sampling.frequencyPenalty = v
        }
        if let v = chat.repetitionPenalty {
            try check(v > 0 && v <= 10, "repetition_penalty", "in (0, 10]")
            p.sampling.repetitionPenalty = v
        }
        if let seed = chat.seed { p.sampling.seed = UInt64(bitPattern: seed) }
        if let stop = chat.stop {
            guard stop.count <= configuration.maxStopStrings else {
                throw ServerError.limit("'stop' may hold at most \(configuration.maxStopStrings) strings", param: "stop")
            }
            guard stop.allSatisfy({ $0.utf8.count <= configuration.maxStopStringBytes }) else {
                throw ServerError.limit("each 'stop' string may be at most \(configuration.maxStopStringBytes) bytes long", param: "stop")
            }
            try check(!stop.contains(""), "stop", "non-empty strings")
            p.stop = stop
        }
        p.logprobs = chat.logprobs ?? false
        if let top = chat.topLogprobs {
            try check(top >= 0 && top <= 20, "top_logprobs", "between 0 and 20")
            try check(top == 0 || p.logprobs, "top_logprobs", "used with 'logprobs': true")
            p.topLogprobs = top
        }
        p.thinking = try thinkingParameters(chat, template: template, served: served)
        if let v = chat.maxPixels { try check(v >= ImageTokenBudget.pixelsPerToken, "max_pixels", "at least \(ImageTokenBudget.pixelsPerToken)") }
        if let v = chat.minPixels {
            try check(v >= 1, "min_pixels", "at least 1")
            if let maxPixels = chat.maxPixels { try check(v <= maxPixels, "min_pixels", "at most max_pixels") }
        }
        return p
    }

    /// `enable_thinking` and `max_reasoning_tokens` against what the served model's template can do: an Instruct
    /// template has no think block, so asking it to think, or to budget its reasoning, is refused rather than ignored.
    func thinkingParameters(_ chat: ChatCompletionRequest, template: ChatTemplateKind, served: String) throws -> ThinkingParameters {
        var thinking = ThinkingParameters()
        if template == .instruct {
            if chat.enableThinking == true {
                throw ServerError.invalidRequest(
                    "model '\(served)' has no thinking mode (its chat template never opens a <think> block); "
                        + "serve a Qwen3-VL Thinking model (e.g. Qwen/Qwen3-VL-4B-Thinking) to get reasoning_content",
                    param: chat.enableThinkingParam)
            }
            if chat.maxReasoningTokens != nil {
                throw ServerError.invalidRequest(
                    "'max_reasoning_tokens' applies to thinking models; '\(served)' answers without a think block",
                    param: "max_reasoning_tokens")
            }
            return thinking
        }
        thinking.enabled = chat.enableThinking ?? true
        if let budget = chat.maxReasoningTokens {
            guard budget >= 0 else {
                throw ServerError.invalidRequest("'max_reasoning_tokens' must be 0 or more (0 answers without reasoning)",
                                                 param: "max_reasoning_tokens")
            }
            thinking.maxReasoningTokens = budget
        }
        return thinking
    }

    struct PreparedMessages: Sendable {
        var messages: [ChatMessage] = []
        var images: [RGBImage] = []
        /// The request-wide budget handed to the engine; nil when there are no images.
        var budget: ImageBudget?
    }

    /// Every image URL of a request with its parameter path, in order.
    static func imageURLs(_ chat: ChatCompletionRequest) -> [(url: String, param: String)] {
        var urls: [(url: String, param: String)] = []
        for (m, message) in chat.messages.enumerated() {
            guard case .parts(let list)? = message.content else { continue }
            for (i, part) in list.enumerated() {
                if let image = part.imageURL { urls.append((image.url, "messages[\(m)].content[\(i)].image_url.url")) }
            }
        }
        return urls
    }

    /// OpenAI messages → template messages + decoded images in order. Every image's header is checked (against the
    /// per-image and per-request limits) before any image is decoded; then each is decoded straight to its own budget (`detail`, `max_pixels`), one after another, so the request holds its
    /// images at their budget size only; the processor then leaves them unchanged (smart_resize of a 32-aligned size
    /// within budget is the identity) under the widest budget, which goes to the engine.
    func prepareMessages(_ chat: ChatCompletionRequest, preprocessor: PreprocessorConfiguration,
                         fetched: [String: Data] = [:]) throws -> PreparedMessages {
        var out = PreparedMessages()
        var budgets: [ImageBudget] = []
        var inspected: [ImageSource.Inspected] = []
        var allowance = ImageAllowance(maxImages: configuration.maxImagesPerRequest, maxPixels: configuration.maxRequestPixels)
        let factor = preprocessor.patchSize * preprocessor.mergeSize
        for (m, message) in chat.messages.enumerated() {
            let role: ChatRole
            switch message.role {
            case .system, .developer: role = .system
            case .user: role = .user
            case .assistant: role = .assistant
            case .tool: role = .tool
            }
            var parts: [ContentPart] = []
            switch message.content {
            case .none:
                guard role == .assistant else {
                    throw ServerError.invalidRequest("missing required field 'messages[\(m)].content'", param: "messages[\(m)].content")
                }
            case .text(let text)?:
                parts = [.text(text)]
            case .parts(let list)?:
                for (i, part) in list.enumerated() {
                    let param = "messages[\(m)].content[\(i)]"
                    switch part.type {
                    case "text", "input_text":
                        guard let text = part.text else {
                            throw ServerError.invalidRequest("missing required field '\(param).text'", param: "\(param).text")
                        }
                        parts.append(.text(text))
                    case "image_url", "input_image":
                        guard let image = part.imageURL else {
                            throw ServerError.invalidRequest("missing required field '\(param).image_url'", param: "\(param).image_url")
                        }
                        guard role == .user else {
                            throw ServerError.invalidRequest("'\(param)': images are only accepted in user messages", param: param)
                        }
                        let budget = ImageBudget.resolve(detail: image.detail, requestMaxPixels: chat.maxPixels,
                                                         requestMinPixels: chat.minPixels, preprocessor: preprocessor,
                                                         configuration: configuration)
                        inspected.append(try images.inspect(image.url, param: "\(param).image_url.url", fetched: fetched,
                                                            allowance: &allowance))
                        budgets.append(budget)
                        parts.append(.image)
                    default:
                        throw ServerError.invalidRequest(
                            "'\(param).type': unsupported content part type '\(part.type)'; use 'text' or 'image_url'", param: "\(param).type")
                    }
                }
            }
            out.messages.append(ChatMessage(role: role, content: parts, reasoning: role == .assistant ? message.reasoningContent : nil))
        }
        // Every header is in and within the limits: now decode, one image at a time.
        for (image, budget) in zip(inspected, budgets) { out.images.append(try images.decode(image, budget: budget, factor: factor)) }
        out.budget = budgets.max(by: { $0.maxPixels < $1.maxPixels })
        return out
    }
}

/// The engine's event stream, pulled from the handler (first event) and then from the response body writer.
/// Dropping it — or `cancel()` — terminates the stream, which cancels the generation.
final class EventSource: @unchecked Sendable {
    // Touched by one task at a time: the handler, then the body writer that the handler hands it to.
    private var iterator: AsyncThrowingStream<GenerationEvent, Error>.AsyncIterator?

    init(_ stream: AsyncThrowingStream<GenerationEvent, Error>) {
        iterator = stream.makeAsyncIterator()
    }

    func next() async throws -> GenerationEvent? {
        guard var current = iterator else { return nil }
        iterator = nil
        let event = try await current.next()
        iterator = current
        return event
    }

    func cancel() { iterator = nil }
}
