/// Ends free text that has fallen into a loop: one block of tokens written again and again, the repetition Qwen-VL OCR
/// is known for (a line of a poster read over and over until `max_tokens`). After each token of the answer the tail is
/// checked: when its last `period × repeats` tokens are one block of `period` tokens (1…`maxPeriod`) repeated at least
/// `minRepeats` times and over at least `minSpan` tokens, generation ends there with `FinishReason.repetition`.
/// A poster that really repeats a line does so a few times, not four times in a row over 64 tokens.
/// Constrained answers need no guard: their schema's bounds close them.
public struct RepetitionGuard: Sendable, Equatable {
    public var maxPeriod = 64
    public var minRepeats = 4
    public var minSpan = 64

    public init() {}

    /// Whether `tokens` end in a loop.
    public func loops<C: RandomAccessCollection>(_ tokens: C) -> Bool where C.Element == Int, C.Index == Int {
        let n = tokens.endIndex
        for period in 1...maxPeriod {
            let repeats = max(minRepeats, (minSpan + period - 1) / period)
            let span = period * repeats
            guard tokens.count >= span else { continue }
            var periodic = true
            var i = n - 1
            while i >= n - span + period {
                if tokens[i] != tokens[i - period] { periodic = false; break }
                i -= 1
            }
            if periodic { return true }
        }
        return false
    }
}
