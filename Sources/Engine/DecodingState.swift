import Foundation
import Kernels
import Qwen3VL
import Tensors
import Tokenizer

/// Everything one sequence needs between decode steps: sampler, detokenizer, stop strings, the tokens
/// produced, log-probabilities and timings. The single-sequence `Generator` and the batching
/// `Scheduler` drive the same type, so both produce identical text for the same input.
final class DecodingState {
    let parameters: GenerationParameters
    let tokenizer: Tokenizer
    let vocab: Int
    let eos: Set<Int>
    let maxNew: Int
    let emit: (GenerationEvent) -> Void
    let started: DispatchTime
    private var sampler: Sampler
    private var detokenizer: StreamingDetokenizer
    private var stops: StopSequences
    private(set) var produced: [Int] = []
    private(set) var logprobs: [TokenLogprob] = []
    private(set) var finish: FinishReason?
    private var stoppedByString = false
    /// Constrained decoding: each step's logits are masked to the tokens the grammar allows (after
    /// penalties, before sampling); EOS is allowed only once the JSON is complete, and the answer ends
    /// with `.stop` as soon as nothing may follow — so `.stop` always means valid JSON.
    private let grammar: GrammarMatcher?
    private var mask: TokenMask
    var timings: Timings
    var usage: Usage
    var decodeStart: DispatchTime?

    init(parameters: GenerationParameters, tokenizer: Tokenizer, vocab: Int, eos: [Int], prompt: [Int], maxNew: Int,
         timings: Timings, usage: Usage, started: DispatchTime, grammar: GrammarMatcher? = nil,
         emit: @escaping (GenerationEvent) -> Void) {
        self.grammar = grammar
        mask = grammar?.makeMask() ?? TokenMask(count: 0)
        self.parameters = parameters
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.eos = Set(eos)
        self.maxNew = maxNew
        self.emit = emit
        self.started = started
        self.timings = timings
        self.usage = usage
        sampler = Sampler(parameters: parameters.sampling, vocabularyLimit: tokenizer.vocabularySize, promptTokens: prompt)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        // User stop strings could cut constrained JSON, so they apply to free text only.
        stops = StopSequences(grammar == nil ? parameters.stop : [])
        if maxNew == 0 { finish = .length }
    }

    var isFinished: Bool { finish != nil }

    /// Chooses the next token from `logits` (modified in place), emits its text, and returns the token
    /// to feed back — or nil when the sequence is finished (EOS, stop string, or the token budget).
    func step(_ logits: UnsafeMutablePointer<Float>) -> Int? {
        guard finish == nil else { return nil }
        if decodeStart == nil { decodeStart = .now() }
        let probabilities = parameters.logprobs ? logSoftmax(logits, count: vocab) : []
        sampler.adjust(logits, count: vocab)
        if let grammar {
            let maskStart = DispatchTime.now()
            grammar.fillMask(&mask)
            mask.apply(to: logits, count: vocab)
            timings.grammarMs += milliseconds(since: maskStart)
        }
        let token = sampler.choose(logits, count: vocab)
        if produced.isEmpty { timings.timeToFirstTokenMs = milliseconds(since: started) }
        if let grammar {
            // A rejected token never happens with a consistent grammar; ending as .length keeps `.stop` meaning valid JSON.
            guard mask[token] else { finish = .length; return nil }
            if eos.contains(token) { finish = .stop; return nil }
            guard grammar.accept(token: token) else { finish = .length; return nil }
        } else if eos.contains(token) {
            finish = .stop
            return nil
        }
        sampler.record(token)
        produced.append(token)
        var entry: [TokenLogprob] = []
        if parameters.logprobs {
            entry = [logprob(for: token, probabilities, top: parameters.topLogprobs)]
            logprobs += entry
        }
        let (text, stopped) = stops.append(detokenizer.append(token))
        emit(.delta(text: text, tokenIDs: [token], logprobs: entry))
        if stopped { finish = .stop; stoppedByString = true; return nil }
        // The JSON is complete and nothing may follow: this is where EOS would be forced.
        if let grammar, grammar.isComplete, !grammar.canContinue { finish = .stop; return nil }
        if produced.count >= maxNew { finish = .length; return nil }
        return token
    }

    /// Marks the sequence cancelled (the caller went away).
    func cancel() { if finish == nil { finish = .cancelled } }

    /// Flushes held-back text and emits the final result.
    @discardableResult
    func complete() -> GenerationResult {
        if !stoppedByString {
            let tail = stops.append(detokenizer.finish())
            var rest = tail.emit
            if tail.stopped { finish = .stop } else { rest += stops.flush() }
            if !rest.isEmpty { emit(.delta(text: rest, tokenIDs: [], logprobs: [])) }
        }
        timings.decodeMs = decodeStart.map { milliseconds(since: $0) } ?? 0
        timings.decodeTokens = produced.count
        usage.completionTokens = produced.count
        let result = GenerationResult(text: stops.fullText, tokenIDs: produced, finishReason: finish ?? .length,
                                      usage: usage, timings: timings, logprobs: logprobs)
        emit(.finished(result))
        return result
    }

    func logprob(for token: Int, _ probabilities: [Float], top: Int) -> TokenLogprob {
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
