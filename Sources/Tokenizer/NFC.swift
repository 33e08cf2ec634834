import Foundation

// Unicode NFC, the normalizer of Qwen's tokenizer.json. Foundation's `precomposedStringWithCanonicalMapping`
// does the work (checked against every scalar the reference NFC changes, in unicode.json); `isStable`
// skips it for text that NFC provably leaves alone, which is most text.

enum NFC {
    static func normalize(_ text: String) -> String {
        text.precomposedStringWithCanonicalMapping
    }

    /// True when every scalar is in a range whose characters are NFC-stable, have canonical combining class 0
    /// and never take part in a composition with a neighbour from these ranges: everything below U+0300,
    /// CJK punctuation U+3000-3029, kana without the combining voicing marks U+3099/309A, CJK Unified
    /// Ideographs, Hangul syllables, full-width forms, and the emoji blocks. Any other scalar (combining marks,
    /// jamo, decomposable letters...) sends the whole text through `normalize`.
    static func isStable(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var p = 0
        while p < bytes.count {
            let b = bytes[p]
            if b < 0xCC { p += 1; continue }  // ASCII, continuation bytes, and lead bytes of U+0080...U+02FF
            let (value, length) = UTF8Scan.scalar(bytes, at: p)
            switch value {
            case 0x3000...0x3029, 0x3040...0x3098, 0x309B...0x30FF, 0x4E00...0x9FFF, 0xAC00...0xD7A3,
                 0xFF01...0xFF5E, 0x1F300...0x1FAFF:
                p += length
            default:
                return false
            }
        }
        return true
    }
}
