// The Qwen2/Qwen3 pre-tokenizer split, as a hand-written scanner instead of a regex engine.
//
// Reproduces tokenizers' `Split(Regex(QWEN_PATTERN), behavior: Isolated)`, whose regex runs on Oniguruma:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Every scalar matches some alternative, so the pieces tile the text. The alternatives are tried in order
// at each position; the comments on `nextPieceEnd` give the backtracking outcome of each one.
//
// Character classes, as the reference engine defines them (checked scalar by scalar against Tests/Fixtures/
// tokenizer/unicode.json, generated from the reference):
//   \p{L}  general category L (Lu Ll Lt Lm Lo);  \p{N}  general category N (Nd Nl No);
//   \s     Unicode White_Space: U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
//          U+202F, U+205F, U+3000 (not U+180E, U+200B, U+FEFF, nor U+001C-001F as Python's str.isspace has).
//   Both at Unicode 16.0: letters and digits assigned in a later Unicode version count as "other".
//   Case-insensitive contractions: ASCII case plus U+017F (ſ, folds to s): "'ſ" is a contraction piece.

enum CharClass: UInt8 {
    case letter     // \p{L}
    case number     // \p{N}
    case newline    // \r or \n (also \s)
    case space      // any other \s
    case other      // none of the above
}

enum QwenPreTokenizer {
    /// The regex this scanner implements; a tokenizer.json whose Split pattern differs is rejected.
    static let pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Unicode version of the reference regex engine's property tables (tokenizers 0.23.3 / onig 6.9.x).
    static let referenceUnicodeMajor = 16
    static let referenceUnicodeMinor = 0

    private static let asciiClasses: [CharClass] = (0..<128).map { (v: Int) -> CharClass in
        switch v {
        case 0x0A, 0x0D: return .newline
        case 0x09, 0x0B, 0x0C, 0x20: return .space
        case 0x30...0x39: return .number
        case 0x41...0x5A, 0x61...0x7A: return .letter
        default: return .other
        }
    }

    /// The class of one scalar value.
    @inline(__always)
    static func classify(_ value: UInt32) -> CharClass {
        if value < 0x80 { return asciiClasses[Int(value)] }
        return classifyNonASCII(value)
    }

    static func classifyNonASCII(_ value: UInt32) -> CharClass {
        // CJK Unified Ideographs and Hangul syllables: the bulk of non-ASCII social-media text.
        if (0x4E00...0x9FFF).contains(value) || (0xAC00...0xD7A3).contains(value) { return .letter }
        switch value {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return .space
        default: break
        }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        let properties = scalar.properties
        let result: CharClass
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            result = .number
        default:
            return .other
        }
        // The reference's Oniguruma has Unicode 16.0 tables; Swift's are newer (17.0 in Swift 6.3). Scalars
        // assigned later are unassigned (Cn) for the reference, so they are "other" here too.
        guard let age = properties.age, age.major < Self.referenceUnicodeMajor
                || (age.major == Self.referenceUnicodeMajor && age.minor <= Self.referenceUnicodeMinor) else {
            return .other
        }
        return result
    }

    /// Length of the contraction starting at `i` (which holds an apostrophe), or 0.
    @inline(__always)
    private static func contractionLength(_ s: UnsafeBufferPointer<UInt32>, _ i: Int) -> Int {
        let n = s.count
        guard i + 1 < n else { return 0 }
        let a = s[i + 1]
        switch a {
        case 0x73, 0x53, 0x17F, 0x74, 0x54, 0x6D, 0x4D, 0x64, 0x44: return 2  // s S ſ t T m M d D
        default: break
        }
        guard i + 2 < n else { return 0 }
        let b = s[i + 2]
        switch a {
        case 0x72, 0x52, 0x76, 0x56: return b == 0x65 || b == 0x45 ? 3 : 0  // 're 've
        case 0x6C, 0x4C: return b == 0x6C || b == 0x4C ? 3 : 0  // 'll
        default: return 0
        }
    }

    /// The end of the piece that starts at `i`. `s` holds scalar values and `c` their classes.
    static func nextPieceEnd(_ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<CharClass>, _ i: Int) -> Int {
        let n = s.count
        let first = c[i]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if s[i] == 0x27 {
            let len = contractionLength(s, i)
            if len > 0 { return i + len }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+ : a letter run, optionally led by one space or other character.
        var j = i
        if first == .letter {
            j = i + 1
        } else if (first == .other || first == .space) && i + 1 < n && c[i + 1] == .letter {
            j = i + 2
        }
        if j > i {
            while j < n && c[j] == .letter { j += 1 }
            return j
        }
        // \p{N} : one digit at a time.
        if first == .number { return i + 1 }
        // " ?[^\s\p{L}\p{N}]+[\r\n]*" : punctuation run, optionally led by a space, then any newlines.
        j = i
        if s[i] == 0x20 && i + 1 < n && c[i + 1] == .other { j = i + 1 }
        if c[j] == .other {
            while j < n && c[j] == .other { j += 1 }
            while j < n && c[j] == .newline { j += 1 }
            return j
        }
        // Whitespace: let w end the maximal whitespace run.
        var w = i + 1
        while w < n && (c[w] == .space || c[w] == .newline) { w += 1 }
        // \s*[\r\n]+ : backtracking leaves the run up to and including its last newline.
        var k = w - 1
        while k >= i {
            if c[k] == .newline { return k + 1 }
            k -= 1
        }
        // \s+(?!\S) : the whole run at the end of text; else all but its last scalar, if that leaves any.
        if w == n { return w }
        if w - i >= 2 { return w - 1 }
        // \s+ : a single whitespace scalar before a non-space.
        return w
    }
}
