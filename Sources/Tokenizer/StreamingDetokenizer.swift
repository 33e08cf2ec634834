// Incremental decoding for streamed generation: each `append` returns the text completed by one more token.
// Tokens often end in the middle of a character (a Chinese character is 3 bytes, an emoji 4, and byte-level
// BPE splits them freely), so the trailing bytes that are a valid but incomplete UTF-8 prefix are held back.
// Everything before them is decoded exactly as `Tokenizer.decode` would decode it: held-back bytes begin
// with a lead byte, where the full decode also starts a new sequence. Hence the concatenation of all
// `append` results and `finish()` equals `decode(ids, skipSpecialTokens:)`.

public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token; returns the newly completed text (possibly empty), never part of a character.
    public mutating func append(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, skipSpecial: skipSpecialTokens, to: &pending)
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[0..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Returns whatever is held back; an incomplete sequence becomes U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the prefix of `bytes` that does not end inside a valid-so-far multi-byte sequence.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // Find the last non-continuation byte among the final four.
        var start = n - 1
        while start >= 0 && start >= n - 4 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0 && start >= n - 4 else { return n }
        let lead = bytes[start]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return n  // ASCII or a byte that can never start a sequence
        }
        let have = n - start
        if have >= needed { return n }
        // The second byte's range depends on the lead (no overlongs, surrogates, or scalars past U+10FFFF).
        if have >= 2 {
            let second = bytes[start + 1]
            let valid: Bool
            switch lead {
            case 0xE0: valid = (0xA0...0xBF).contains(second)
            case 0xED: valid = (0x80...0x9F).contains(second)
            case 0xF0: valid = (0x90...0xBF).contains(second)
            case 0xF4: valid = (0x80...0x8F).contains(second)
            default: valid = true
            }
            if !valid { return n }
        }
        return start
    }
}
