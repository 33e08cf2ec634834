import Foundation
import Testing
@testable import Tokenizer

// StreamingDetokenizer: the chunks concatenate to decode(ids), and no chunk splits a character.

private func stream(_ ids: [Int], skipSpecialTokens: Bool) -> (chunks: [String], tail: String) {
    var detokenizer = StreamingDetokenizer(tokenizer: Fixtures.tokenizer, skipSpecialTokens: skipSpecialTokens)
    let chunks = ids.map { detokenizer.append($0) }
    return (chunks, detokenizer.finish())
}

@Test func streamingConcatenationEqualsDecode() {
    let tokenizer = Fixtures.tokenizer
    let sequences = Fixtures.corpus.entries.map(\.ids) + Fixtures.corpus.decode_cases.map(\.ids)
    for ids in sequences {
        for skip in [false, true] {
            let (chunks, tail) = stream(ids, skipSpecialTokens: skip)
            let streamed = chunks.joined() + tail
            #expect(sameBytes(streamed, tokenizer.decode(ids, skipSpecialTokens: skip)), "\(ids)")
        }
    }
}

@Test func streamingNeverEmitsPartialCharacters() {
    let tokenizer = Fixtures.tokenizer
    // Valid text: no chunk may contain U+FFFD, since every character is complete when emitted.
    for entry in Fixtures.corpus.entries where !entry.decoded.unicodeScalars.contains("\u{FFFD}") {
        let (chunks, tail) = stream(entry.ids, skipSpecialTokens: false)
        #expect(chunks.allSatisfy { !$0.unicodeScalars.contains("\u{FFFD}") }, "\(show(entry.text))")
        #expect(tail.isEmpty)
    }
    // A rare CJK character and an emoji, each split over several byte-level tokens.
    let text = "𠀀😀"
    let ids = tokenizer.encode(text)
    #expect(ids.count > 2)
    var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
    var emitted: [String] = []
    for id in ids {
        let chunk = detokenizer.append(id)
        #expect(chunk.isEmpty || chunk == "𠀀" || chunk == "😀" || chunk == text)
        emitted.append(chunk)
    }
    #expect(emitted.joined() + detokenizer.finish() == text)
    #expect(emitted.filter { !$0.isEmpty }.count >= 1)
}

@Test func streamingSkipsSpecialTokensByDefault() {
    let tokenizer = Fixtures.tokenizer
    let ids = tokenizer.encode("<|im_start|>assistant\n<think>\n</think>\n你好<|im_end|>")
    var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
    let text = ids.map { detokenizer.append($0) }.joined() + detokenizer.finish()
    #expect(text == "assistant\n<think>\n</think>\n你好")   // <think> is not special
}

@Test func streamingFinishReplacesIncompleteBytes() {
    let tokenizer = Fixtures.tokenizer
    let ids = tokenizer.encode("𠀀")
    #expect(ids.count >= 2)
    var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
    let partial = ids.dropLast().map { detokenizer.append($0) }.joined()
    #expect(partial.isEmpty)
    #expect(detokenizer.finish() == "\u{FFFD}")
    #expect(detokenizer.finish() == "")
}

@Test func completePrefixLength() {
    typealias S = StreamingDetokenizer
    #expect(S.completePrefixLength([]) == 0)
    #expect(S.completePrefixLength([0x61]) == 1)
    #expect(S.completePrefixLength([0x61, 0xE4]) == 1)
    #expect(S.completePrefixLength([0x61, 0xE4, 0xB8]) == 1)
    #expect(S.completePrefixLength([0xE4, 0xB8, 0xAD]) == 3)
    #expect(S.completePrefixLength([0xE0, 0x80]) == 2)        // overlong: invalid, not held
    #expect(S.completePrefixLength([0xED, 0xA0]) == 2)        // surrogate: invalid, not held
    #expect(S.completePrefixLength([0xF0, 0x9F, 0x98]) == 0)
    #expect(S.completePrefixLength([0xF5]) == 1)
    #expect(S.completePrefixLength([0x80, 0x80]) == 2)
}
