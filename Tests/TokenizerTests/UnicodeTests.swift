import Foundation
import Testing
@testable import Tokenizer

// The scanner's character classes and NFC against tables taken from the reference (unicode.json).

@Test func characterClassesMatchReference() {
    let tables = Fixtures.unicode.classes
    func set(_ name: String) -> [Bool] {
        var member = [Bool](repeating: false, count: 0x110000)
        for range in tables[name]! { for v in range[0]...range[1] { member[Int(v)] = true } }
        return member
    }
    let letters = set("L"), numbers = set("N"), spaces = set("S")
    var mismatches: [String] = []
    for v in UInt32(0)..<0x110000 where !(0xD800...0xDFFF).contains(v) {
        let expected: CharClass
        if letters[Int(v)] { expected = .letter }
        else if numbers[Int(v)] { expected = .number }
        else if v == 0x0A || v == 0x0D { expected = .newline }
        else if spaces[Int(v)] { expected = .space }
        else { expected = .other }
        let got = QwenPreTokenizer.classify(v)
        if got != expected {
            mismatches.append("U+\(String(v, radix: 16, uppercase: true)) \(got) (reference \(expected))")
        }
    }
    #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(40).joined(separator: ", "))")
}

@Test func nfcMatchesReference() {
    var failures: [String] = []
    for pair in Fixtures.unicode.nfc {
        let got = NFC.normalize(pair[0])
        if !sameBytes(got, pair[1]) {
            failures.append("\(show(pair[0])) -> \(show(got)) (reference \(show(pair[1])))")
        }
    }
    #expect(failures.isEmpty, "\(failures.count) NFC failures: \(failures.prefix(20).joined(separator: "; "))")
}

@Test func nfcFastPathIsSound() {
    // Every scalar the reference NFC changes, or that composes, must fail the stability quick check.
    for pair in Fixtures.unicode.nfc where !sameBytes(pair[0], pair[1]) {
        var s = pair[0]
        let stable = s.withUTF8 { NFC.isStable($0) }
        #expect(!stable, "\(show(pair[0])) passed the NFC quick check")
    }
}

@Test func contractionsMatchReference() {
    let probes = Fixtures.unicode.contraction_letters
    for (context, accepted) in probes.accepted {
        let acceptedSet = Set(accepted)
        for candidate in probes.candidates {
            let letter = String(Character(Unicode.Scalar(candidate)!))
            let text = context.replacingOccurrences(of: "{}", with: letter)
            let scalars = text.unicodeScalars.map(\.value)
            let classes = scalars.map(QwenPreTokenizer.classify)
            let end = scalars.withUnsafeBufferPointer { s in
                classes.withUnsafeBufferPointer { c in QwenPreTokenizer.nextPieceEnd(s, c, 0) }
            }
            let isContraction = end == scalars.count - 1
            #expect(isContraction == acceptedSet.contains(candidate), "\(context) with U+\(String(candidate, radix: 16))")
        }
    }
}

@Test func whitespaceSplitting() {
    func pieces(_ text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        let classes = scalars.map(QwenPreTokenizer.classify)
        var out: [String] = []
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in
                var i = 0
                while i < s.count {
                    let end = QwenPreTokenizer.nextPieceEnd(s, c, i)
                    out.append(String(String.UnicodeScalarView(s[i..<end].map { Unicode.Scalar($0)! })))
                    i = end
                }
            }
        }
        return out
    }
    #expect(pieces("a   b") == ["a", "  ", " b"])
    #expect(pieces("a  \n  \n  b") == ["a", "  \n  \n", " ", " b"])
    #expect(pieces("x  ") == ["x", "  "])
    #expect(pieces("it's 12!!\n\n") == ["it", "'s", " ", "1", "2", "!!\n\n"])
    #expect(pieces("\u{3000}中文") == ["\u{3000}中文"])
    #expect(pieces("I'LL") == ["I", "'LL"])
}

@Test func scalarsNewerThanReferenceAreNFCStable() {
    // Foundation's NFC may know a newer Unicode than the reference; scalars the reference does not know must
    // pass through unchanged for the two to agree.
    var changed: [String] = []
    for v in UInt32(0)..<0x110000 {
        guard let scalar = Unicode.Scalar(v), let age = scalar.properties.age,
              age.major > QwenPreTokenizer.referenceUnicodeMajor else { continue }
        let s = String(scalar)
        if !sameBytes(NFC.normalize(s), s) || !sameBytes(NFC.normalize("a" + s + "\u{316}"), "a" + s + "\u{316}") {
            changed.append("U+\(String(v, radix: 16))")
        }
    }
    #expect(changed.isEmpty, "\(changed.prefix(20))")
}

/// Property-based smoke test of the tokenizer on hostile text (issue 13 §1): random scalars from every plane, lone
/// combining marks, control characters, text that spells control tokens. Encoding never traps, decoding gives back
/// the NFC text, and the encoding of that text is stable.
@Test func randomTextEncodesAndDecodesStably() {
    let tokenizer = Fixtures.tokenizer
    var state: UInt64 = 0x70CE_4155
    func next(_ bound: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(bound))
    }
    let pieces = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "\u{301}", "\u{200D}", "\u{FE0F}", "\r\n", "\u{0}", "ก้", "🏳️‍🌈", "'s", "  "]
    for _ in 0..<300 {
        var text = ""
        for _ in 0..<(1 + next(40)) {
            if next(4) == 0 {
                text += pieces[next(pieces.count)]
            } else {
                let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF]
                let range = ranges[next(ranges.count)]
                if let scalar = Unicode.Scalar(range.lowerBound + UInt32(next(Int(range.upperBound - range.lowerBound) + 1))) {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        let ids = tokenizer.encode(text, parseSpecialTokens: false)
        let decoded = tokenizer.decode(ids)
        // Text never forms control tokens when special tokens are not parsed.
        #expect(!ids.contains { tokenizer.isSpecial($0) }, "\(show(text))")
        #expect(tokenizer.encode(decoded, parseSpecialTokens: false) == ids, "\(show(text))")
    }
}
