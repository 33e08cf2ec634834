import Foundation
import Kernels
import Qwen3VL
import Tensors
import Tokenizer

/// Everything one sequence needs between decode steps: sampler, detokenizer, stop strings, the tokens
/// produced, log-probabilities and timings. The single-sequence `Generator` and the batching
/// `Scheduler` drive the same type, so both produce identical text for the same input.
///
/// A thinking model's answer has two phases (`ReasoningPlan`): the think block, streamed as `.reasoning` events,
/// then the answer after `</think>`, streamed as `.delta`. Stop strings, log-probabilities and the JSON grammar
/// belong to the answer. Tokens the engine writes for the model (closing the block when `maxReasoningTokens` is
/// spent) are fed back like sampled ones.
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
    /// The think block: non-nil while the sequence is in it.
    private let plan: ReasoningPlan?
    private var inReasoning: Bool
    private var reasoningText: ReasoningText
    private var reasoningCount = 0
    /// Tokens to feed before sampling again (closing the think block).
    private var forced: [Int] = []
    /// After a think block the answer's leading newlines (the template's separator) are not part of it.
    private var answerStarted: Bool
    /// Where the answer's tokens begin in `produced` (after any think block), for the repetition guard.
    private var answerStart: Int?
    var timings: Timings
    var usage: Usage
    var decodeStart: DispatchTime?

    init(parameters: GenerationParameters, tokenizer: Tokenizer, vocab: Int, eos: [Int], prompt: [Int], maxNew: Int,
         timings: Timings, usage: Usage, started: DispatchTime, grammar: GrammarMatcher? = nil,
         reasoning plan: ReasoningPlan? = nil, emit: @escaping (GenerationEvent) -> Void) {
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
        self.plan = plan
        inReasoning = plan != nil
        answerStarted = plan == nil
        reasoningText = ReasoningText(tokenizer: tokenizer)
        sampler = Sampler(parameters: parameters.sampling, vocabularyLimit: tokenizer.vocabularySize, promptTokens: prompt)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        // User stop strings could cut constrained JSON, so they apply to free text only.
        stops = StopSequences(grammar == nil ? parameters.stop : [])
        if let plan, plan.budget == 0 { forced = plan.closeTokens }
        if maxNew == 0 { finish = .length }
    }

    var isFinished: Bool { finish != nil }

    /// Chooses the next token from `logits` (modified in place), emits its text, and returns the token
    /// to feed back — or nil when the sequence is finished (EOS, stop string, or the token budget).
    func step(_ logits: UnsafeMutablePointer<Float>) -> Int? {
        guard finish == nil else { return nil }
        if decodeStart == nil { decodeStart = .now() }
        let token: Int
        var entry: [TokenLogprob] = []
        let wasForced = !forced.isEmpty
        if wasForced {
            token = forced.removeFirst()
        } else {
            // The grammar constrains the answer: from the first token after the think block (and its separator).
            let constrained = grammar != nil && !inReasoning
            let probabilities = parameters.logprobs && !inReasoning ? logSoftmax(logits, count: vocab) : []
            sampler.adjust(logits, count: vocab)
            if constrained, let grammar {
                let maskStart = DispatchTime.now()
                grammar.fillMask(&mask)
                mask.apply(to: logits, count: vocab)
                timings.grammarMs += milliseconds(since: maskStart)
            }
            var choice = sampler.choose(logits, count: vocab)
            if produced.isEmpty { timings.timeToFirstTokenMs = milliseconds(since: started) }
            if inReasoning, eos.contains(choice) {
                // Ending inside the think block: a JSON answer is still owed, so the block is closed for the model;
                // free text simply ends here (with the reasoning so far and no answer).
                guard let plan, grammar != nil else { return end(.stop) }
                forced = plan.closeTokens
                choice = forced.removeFirst()
            } else if constrained, let grammar {
                // A rejected token never happens with a consistent grammar; ending as .length keeps `.stop` meaning valid JSON.
                guard mask[choice] else { return end(.length) }
                if eos.contains(choice) { return end(.stop) }
                guard grammar.accept(token: choice) else { return end(.length) }
            } else if eos.contains(choice) {
                return end(.stop)
            }
            token = choice
            if parameters.logprobs && !inReasoning { entry = [logprob(for: token, probabilities, top: parameters.topLogprobs)] }
        }
        if produced.isEmpty && wasForced { timings.timeToFirstTokenMs = milliseconds(since: started) }
        sampler.record(token)
        produced.append(token)

        if inReasoning, let plan {
            usage.reasoningTokens += 1
            if token == plan.endToken {
                inReasoning = false
                let tail = reasoningText.finish()
                if !tail.isEmpty { emit(.reasoning(text: tail, tokenIDs: [])) }
                // The grammar starts after the template's separator; a forced close already carries it.
                if grammar != nil && forced.isEmpty { forced = plan.separatorTokens }
            } else {
                if !wasForced { reasoningCount += 1 }
                emit(.reasoning(text: reasoningText.append(token), tokenIDs: [token]))
                if let budget = plan.budget, reasoningCount >= budget, forced.isEmpty { forced = plan.closeTokens }
            }
        } else {
            if !entry.isEmpty { logprobs += entry }
            var piece = detokenizer.append(token)
            if !answerStarted {
                piece = piece.trimmingLeadingNewlines()
                answerStarted = !piece.isEmpty
            }
            let (text, stopped) = stops.append(piece)
            emit(.delta(text: text, tokenIDs: [token], logprobs: entry))
            if stopped { stoppedByString = true; return end(.stop) }
            if answerStart == nil { answerStart = produced.count - 1 }
            if grammar == nil, let repetition = parameters.repetitionGuard, let answerStart,
               repetition.loops(produced[answerStart...]) { return end(.repetition) }
            // The JSON is complete and nothing may follow: this is where EOS would be forced.
            if let grammar, !wasForced, grammar.isComplete, !grammar.canContinue { return end(.stop) }
        }
        if produced.count >= maxNew { return end(.length) }
        return token
    }

    private func end(_ reason: FinishReason) -> Int? {
        finish = reason
        return nil
    }

    /// Marks the sequence cancelled (the caller went away).
    func cancel() { if finish == nil { finish = .cancelled } }

    /// Flushes held-back text and emits the final result.
    @discardableResult
    func complete() -> GenerationResult {
        if inReasoning {
            let tail = reasoningText.finish()
            if !tail.isEmpty { emit(.reasoning(text: tail, tokenIDs: [])) }
        }
        if !stoppedByString {
            var piece = detokenizer.finish()
            if !answerStarted { piece = piece.trimmingLeadingNewlines() }
            let tail = stops.append(piece)
            var rest = tail.emit
            if tail.stopped { finish = .stop } else { rest += stops.flush() }
            if !rest.isEmpty { emit(.delta(text: rest, tokenIDs: [], logprobs: [])) }
        }
        timings.decodeMs = decodeStart.map { milliseconds(since: $0) } ?? 0
        timings.decodeTokens = produced.count
        usage.completionTokens = produced.count
        var result = GenerationResult(text: stops.fullText, tokenIDs: produced, finishReason: finish ?? .length,
                                      usage: usage, timings: timings, logprobs: logprobs)
        if plan != nil { result.reasoning = reasoningText.text }
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

extension String {
    func trimmingLeadingNewlines() -> String {
        var scalars = Substring(self).unicodeScalars
        while scalars.first == "\n" { scalars.removeFirst() }
        return String(scalars)
    }
}
