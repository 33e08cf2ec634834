import Qwen3VL
import Tokenizer

/// How a request to a thinking model (Qwen3-VL-…-Thinking) reasons.
public struct ThinkingParameters: Sendable, Equatable {
    /// false: the prompt closes the think block at once and the model answers without reasoning (thinking templates
    /// only; an Instruct template has no think block to open).
    public var enabled = true
    /// Reasoning tokens after which the think block is closed for the model (`\n</think>\n\n` is written in its name)
    /// and the answer begins; nil = no budget besides `maxTokens`. 0 closes it before the first reasoning token.
    public var maxReasoningTokens: Int?
    public init(enabled: Bool = true, maxReasoningTokens: Int? = nil) {
        self.enabled = enabled
        self.maxReasoningTokens = maxReasoningTokens
    }
}

/// The token ids that delimit a think block, for a prompt that ends inside one (`…<|im_start|>assistant\n<think>\n`).
/// Decided from the prompt's tokens, so it holds whatever template rendered them.
struct ReasoningPlan: Sendable, Equatable {
    /// `</think>`: where reasoning ends and the answer begins.
    let endToken: Int
    /// Written for the model when the budget is spent (or it stops while a JSON answer is still owed):
    /// `\n`, `</think>`, `\n\n` — the text a thinking template puts between reasoning and answer.
    let closeTokens: [Int]
    /// `\n\n`, written after the model's own `</think>` when a grammar constrains the answer (the grammar starts
    /// after it, as it would after the template's separator).
    let separatorTokens: [Int]
    let budget: Int?

    /// nil unless `tokens` ends with `<think>` followed by a newline and the tokenizer knows both think tokens.
    static func detect(prompt tokens: [Int], tokenizer: Tokenizer, parameters: ThinkingParameters) -> ReasoningPlan? {
        guard let start = tokenizer.tokenID("<think>"), let end = tokenizer.tokenID("</think>") else { return nil }
        let newline = tokenizer.encode("\n", parseSpecialTokens: false)
        guard tokens.count >= 1 + newline.count, tokens.suffix(newline.count + 1).elementsEqual([start] + newline) else { return nil }
        let separator = tokenizer.encode("\n\n", parseSpecialTokens: false)
        return ReasoningPlan(endToken: end, closeTokens: newline + [end] + separator, separatorTokens: separator,
                             budget: parameters.maxReasoningTokens.map { max(0, $0) })
    }
}

/// The reasoning text of one sequence as it streams: decoded without cutting a UTF-8 character, without the
/// newlines that open and close the think block (the template writes `<think>\n` … `\n</think>`). Newlines at the
/// end are held back until more reasoning follows them, so the pieces emitted add up to `text` exactly.
struct ReasoningText {
    private var detokenizer: StreamingDetokenizer
    private var started = false
    private var heldNewlines = ""
    private(set) var text = ""

    init(tokenizer: Tokenizer) {
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
    }

    /// The text to emit for `token` (possibly empty).
    mutating func append(_ token: Int) -> String { accept(detokenizer.append(token)) }

    /// The think block closed: what the detokenizer still held (trailing newlines are dropped).
    mutating func finish() -> String { accept(detokenizer.finish()) }

    private mutating func accept(_ piece: String) -> String {
        var piece = Substring(piece).unicodeScalars
        if !started {
            while piece.first == "\n" { piece.removeFirst() }
            if piece.isEmpty { return "" }
            started = true
        }
        var trailing = 0
        for scalar in piece.reversed() { if scalar == "\n" { trailing += 1 } else { break } }
        if trailing == piece.count {
            heldNewlines += String(piece)
            return ""
        }
        let body = String(piece.dropLast(trailing))
        let out = heldNewlines + body
        heldNewlines = String(repeating: "\n", count: trailing)
        text += out
        return out
    }
}
