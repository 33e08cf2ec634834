import Qwen3VL

/// What answers requests: the server, the analysis tasks and the queue workers talk to the model only through this,
/// so that the real `InferenceEngine` and a test's stand-in (in the test targets, never in the product) plug in the
/// same way.
public protocol ChatEngine: Sendable {
    /// The model's recommended sampling (generation_config.json), before the request's own values.
    var defaultParameters: GenerationParameters { get }
    /// The preprocessor's pixel budget (`min_pixels` / `max_pixels`).
    var preprocessor: PreprocessorConfiguration { get }
    /// Streams `.delta` events, then one `.finished`; terminating the stream cancels the request.
    func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error>
    /// Cache and queue counters for `/metrics`; nil when the engine keeps none (the default, for stand-ins).
    var engineStatistics: InferenceEngine.Statistics? { get }
    /// The model's chat template: whether requests may think (`reasoning_content`).
    var chatTemplate: ChatTemplateKind { get }
}

extension ChatEngine {
    public var engineStatistics: InferenceEngine.Statistics? { nil }
    public var chatTemplate: ChatTemplateKind { .instruct }

    /// Runs a request to its end and returns the result (nil events: the caller was cancelled).
    public func complete(_ request: InferenceEngine.Request) async throws -> GenerationResult {
        var result: GenerationResult?
        for try await event in generate(request) {
            if case .finished(let r) = event { result = r }
        }
        guard let result else { throw CancellationError() }
        return result
    }
}

extension InferenceEngine: ChatEngine {
    public var chatTemplate: ChatTemplateKind { processor.template }
    public var defaultParameters: GenerationParameters { .defaults(for: model) }
    public var preprocessor: PreprocessorConfiguration { processor.imageProcessor.configuration }
    public var engineStatistics: InferenceEngine.Statistics? { statistics() }
}
