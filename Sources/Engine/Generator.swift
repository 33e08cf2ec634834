import Foundation
import Kernels
import Qwen3VL
import Tensors
import Tokenizer

/// Runs one prompt to completion on the calling thread: vision encoding, prefill, then the decode
/// loop (`DecodingState`: sampling, stop conditions, streaming deltas) with cancellation between
/// steps. The `Scheduler` runs many of these interleaved; this is the simple single-sequence path
/// used by tests, the CLI's `bench`, and as the reference the scheduler must match.
public struct Generator: Sendable {
    public let model: Qwen3VLModel
    public let processor: Qwen3VLProcessor
    /// Longest prompt + answer accepted, in tokens.
    public let contextLimit: Int
    /// The vocabulary index for constrained decoding, built on the first request that needs it.
    let grammarVocabularies = GrammarVocabularyCache()

    public init(model: Qwen3VLModel, processor: Qwen3VLProcessor, contextLimit: Int? = nil) {
        self.model = model
        self.processor = processor
        self.contextLimit = contextLimit ?? min(model.configuration.text.maxPositionEmbeddings, 32_768)
    }

    /// Checks that a prompt fits and returns how many tokens may be generated after it.
    func budget(for prompt: PreparedPrompt, _ parameters: GenerationParameters) throws -> Int {
        guard !prompt.tokens.isEmpty else { throw PromptError.empty }
        guard prompt.tokens.count < contextLimit else { throw PromptError.tooLong(tokens: prompt.tokens.count, limit: contextLimit) }
        return max(0, min(parameters.maxTokens, contextLimit - prompt.tokens.count))
    }

    /// A matcher for constrained decoding with this model's vocabulary and EOS tokens, compiled within `limits`.
    public func makeMatcher(_ format: ResponseFormat, limits: SchemaLimits = .default,
                            isCancelled: @escaping () -> Bool = { false }) throws -> GrammarMatcher {
        let vocabulary = grammarVocabularies.vocabulary(tokenizer: processor.tokenizer, size: model.configuration.text.vocabSize)
        return try GrammarMatcher(format: format, vocabulary: vocabulary, eosTokenIDs: model.eosTokenIDs, limits: limits,
                                  isCancelled: isCancelled)
    }

    /// Generates an answer for `prompt`. `emit` receives deltas as tokens are produced; `isCancelled`
    /// is polled before every step. Throws `PromptError.tooLong` when the prompt does not fit, and
    /// `SchemaError` when `parameters.responseFormat` cannot be compiled (before any model work).
    public func generate(_ prompt: PreparedPrompt, parameters: GenerationParameters,
                         timings startTimings: Timings = Timings(), started: DispatchTime = .now(),
                         isCancelled: () -> Bool = { false },
                         emit: @escaping (GenerationEvent) -> Void = { _ in }) throws -> GenerationResult {
        let maxNew = try budget(for: prompt, parameters)
        let matcher = try parameters.responseFormat.map { try makeMatcher($0) }
        var timings = startTimings
        var phase = DispatchTime.now()
        let vision: VisionFeatures? = prompt.images.isEmpty ? nil
            : model.encodeImages(pixelValues: prompt.pixelValues(), grids: prompt.grids)
        timings.visionMs = milliseconds(since: phase)

        phase = .now()
        let positions = try model.positions(for: prompt.tokens, grids: prompt.grids)
        let cache = model.text.makeCache(initialCapacity: prompt.tokens.count + min(maxNew, 1024))
        cache.ropeDelta = positions.ropeDelta
        var logits = model.text.forward(tokens: prompt.tokens, positions: positions, cache: cache, vision: vision)
        timings.prefillMs = milliseconds(since: phase)

        let state = DecodingState(parameters: parameters, tokenizer: processor.tokenizer, vocab: model.configuration.text.vocabSize,
                                  eos: model.eosTokenIDs, prompt: prompt.tokens, maxNew: maxNew, timings: timings,
                                  usage: Usage(promptTokens: prompt.tokens.count, imageTokens: prompt.imageTokenCount),
                                  started: started, grammar: matcher,
                                  reasoning: ReasoningPlan.detect(prompt: prompt.tokens, tokenizer: processor.tokenizer,
                                                                  parameters: parameters.thinking),
                                  emit: emit)
        while !state.isFinished {
            if isCancelled() { state.cancel(); break }
            guard let token = state.step(logits.data) else { break }
            let position = MRoPEPositions.continuation(cache.count..<(cache.count + 1), ropeDelta: cache.ropeDelta)
            logits = model.text.forward(tokens: [token], positions: position, cache: cache)
        }
        return state.complete()
    }
}
