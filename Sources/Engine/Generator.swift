import Foundation
import Kernels
import Qwen3VL
import Tensors
import Tokenizer

/// Runs one prompt to completion on the calling thread: vision encoding, prefill, then the decode
/// loop with sampling, stop conditions, streaming deltas and cancellation between steps.
/// The `InferenceEngine` actor owns the model and calls this on its worker thread.
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

    /// Generates an answer for `prompt`. `emit` receives deltas as tokens are produced; `isCancelled`
    /// is polled before every step. Throws `PromptError.tooLong` when the prompt does not fit, and
    /// `SchemaError` when `parameters.responseFormat` cannot be compiled (before any model work).
    public func generate(_ prompt: PreparedPrompt, parameters: GenerationParameters,
                         timings startTimings: Timings = Timings(), started: DispatchTime = .now(),
                         isCancelled: () -> Bool = { false },
                         emit: (GenerationEvent) -> Void = { _ in }) throws -> GenerationResult {
        var timings = startTimings
        guard !prompt.tokens.isEmpty else { throw PromptError.empty }
        guard prompt.tokens.count < contextLimit else { throw PromptError.tooLong(tokens: prompt.tokens.count, limit: contextLimit) }
        var usage = Usage(promptTokens: prompt.tokens.count, completionTokens: 0, imageTokens: prompt.imageTokenCount)
        let matcher = try parameters.responseFormat.map { try makeMatcher($0) }

        var phase = DispatchTime.now()
        let vision: VisionFeatures? = prompt.images.isEmpty ? nil
            : model.encodeImages(pixelValues: prompt.pixelValues(), grids: prompt.grids)
        timings.visionMs = milliseconds(since: phase)

        phase = .now()
        let positions = try model.positions(for: prompt.tokens, grids: prompt.grids)
        let cache = model.text.makeCache(initialCapacity: prompt.tokens.count + min(parameters.maxTokens, 1024))
        cache.ropeDelta = positions.ropeDelta
        let logits = model.text.forward(tokens: prompt.tokens, positions: positions, cache: cache, vision: vision)
        timings.prefillMs = milliseconds(since: phase)

        let maxNew = max(0, min(parameters.maxTokens, contextLimit - prompt.tokens.count))
        let result = decodeLoop(firstLogits: logits, cache: cache, prompt: prompt.tokens, maxNew: maxNew,
                                parameters: parameters, grammar: matcher, timings: &timings, started: started,
                                isCancelled: isCancelled, emit: emit)
        usage.completionTokens = result.tokenIDs.count
        var final = result
        final.usage = usage
        final.timings = timings
        emit(.finished(final))
        return final
    }

    /// A matcher for constrained decoding with this model's vocabulary and EOS tokens.
    public func makeMatcher(_ format: ResponseFormat) throws -> GrammarMatcher {
        let vocabulary = grammarVocabularies.vocabulary(tokenizer: processor.tokenizer, size: model.configuration.text.vocabSize)
        return try GrammarMatcher(format: format, vocabulary: vocabulary, eosTokenIDs: model.eosTokenIDs)
    }

    /// The decode loop after prefill. With a `grammar`, each step's logits are masked to the tokens it allows
    /// (after penalties, before sampling); the answer ends with `.stop` as soon as the JSON is complete and
    /// nothing may follow, and EOS is only allowed once it is complete, so `.stop` always means valid JSON.
    func decodeLoop(firstLogits: Tensor, cache: KVCache, prompt: [Int], maxNew: Int, parameters: GenerationParameters,
                    grammar: GrammarMatcher? = nil, timings: inout Timings, started: DispatchTime,
                    isCancelled: () -> Bool, emit: (GenerationEvent) -> Void) -> GenerationResult {
        let tokenizer = processor.tokenizer
        let vocab = model.configuration.text.vocabSize
        var sampler = Sampler(parameters: parameters.sampling, vocabularyLimit: tokenizer.vocabularySize, promptTokens: prompt)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        var stops = StopSequences(grammar == nil ? parameters.stop : [])
        var mask = grammar?.makeMask() ?? TokenMask(count: 0)
        let eos = Set(model.eosTokenIDs)
        var logits = firstLogits
        var produced: [Int] = []
        var logprobs: [TokenLogprob] = []
        var finish = FinishReason.length
        var stoppedByString = false
        let decodeStart = DispatchTime.now()

        while produced.count < maxNew {
            if isCancelled() { finish = .cancelled; break }
            let raw = logits.data
            let probabilities = parameters.logprobs ? logSoftmax(raw, count: vocab) : []
            sampler.adjust(raw, count: vocab)
            if let grammar {
                let maskStart = DispatchTime.now()
                grammar.fillMask(&mask)
                mask.apply(to: raw, count: vocab)
                timings.grammarMs += milliseconds(since: maskStart)
            }
            let token = sampler.choose(raw, count: vocab)
            if produced.isEmpty { timings.timeToFirstTokenMs = milliseconds(since: started) }
            if let grammar {
                // Never true with a consistent grammar; ending as .length keeps `.stop` meaning valid JSON.
                guard mask[token] else { break }
                if eos.contains(token) { finish = .stop; break }
                guard grammar.accept(token: token) else { break }
            } else if eos.contains(token) { finish = .stop; break }
            sampler.record(token)
            produced.append(token)
            var entry: [TokenLogprob] = []
            if parameters.logprobs {
                entry = [logprob(for: token, probabilities, top: parameters.topLogprobs)]
                logprobs += entry
            }
            let piece = detokenizer.append(token)
            let (text, stopped) = stops.append(piece)
            emit(.delta(text: text, tokenIDs: [token], logprobs: entry))
            if stopped { finish = .stop; stoppedByString = true; break }
            // The JSON is complete and nothing may follow: this is where EOS would be forced.
            if let grammar, grammar.isComplete, !grammar.canContinue { finish = .stop; break }
            if produced.count >= maxNew { break }
            let position = MRoPEPositions.continuation(cache.count..<(cache.count + 1), ropeDelta: cache.ropeDelta)
            logits = model.text.forward(tokens: [token], positions: position, cache: cache)
        }
        // Release what the detokenizer and the stop-string matcher still hold.
        if !stoppedByString {
            let tail = stops.append(detokenizer.finish())
            var rest = tail.emit
            if tail.stopped { finish = .stop } else { rest += stops.flush() }
            if !rest.isEmpty { emit(.delta(text: rest, tokenIDs: [], logprobs: [])) }
        }
        timings.decodeMs = milliseconds(since: decodeStart)
        timings.decodeTokens = produced.count
        return GenerationResult(text: stops.fullText, tokenIDs: produced, finishReason: finish,
                                usage: Usage(), timings: timings, logprobs: logprobs)
    }

    func logprob(for token: Int, _ probabilities: [Float], top: Int) -> TokenLogprob {
        let tokenizer = processor.tokenizer
        func text(_ id: Int) -> String { String(decoding: tokenizer.tokenBytes(id), as: UTF8.self) }
        var alternatives: [TokenAlternative] = []
        if top > 0 {
            var best: [(Int, Float)] = []
            for (id, p) in probabilities.enumerated() where best.count < top || p > best[best.count - 1].1 {
                best.append((id, p))
                best.sort { $0.1 > $1.1 }
                if best.count > top { best.removeLast() }
            }
            alternatives = best.map { TokenAlternative(token: text($0.0), id: $0.0, logprob: $0.1, bytes: tokenizer.tokenBytes($0.0)) }
        }
        return TokenLogprob(token: text(token), id: token, logprob: probabilities[token], bytes: tokenizer.tokenBytes(token), top: alternatives)
    }
}
