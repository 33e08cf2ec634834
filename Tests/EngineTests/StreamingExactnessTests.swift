import Foundation
import Testing
@testable import Engine
import Tokenizer

// Streaming must not change the text (issue 13 §7): the deltas a client receives concatenate to the non-streamed
// answer byte for byte, for every script, however the tokens cut through UTF-8 sequences and grapheme clusters, with
// and without stop strings. Driven through `DecodingState` (what both the scheduler and the generator use) with
// one-hot logits, so each step produces exactly the token the test chose.

private let texts = [
    "中文测试：今天天气很好，我们去公园散步。日本語のテキストも。한국어 문장도 있습니다.",
    "ภาษาไทยมีสระและวรรณยุกต์ เช่น กิ๊ก ก้ ก็ น้ำ ที่ซ้อนกัน",
    "नमस्ते दुनिया — क्षत्रिय, श्रृंगार, द्वित्व और हिन्दी के संयुक्ताक्षर",
    "مرحبا بالعالم، هذا نصٌّ عربيٌّ مُشَكَّل",
    "Family 👨‍👩‍👧‍👦, flag 🏳️‍🌈, skin 👍🏽, keycap 1️⃣, flags 🇯🇵🇫🇷, e\u{301}\u{302} and Zalgo z\u{300}\u{301}\u{302}\u{303}",
    "ASCII only, with stop-like text: END? </answer> \n\n done",
    "\u{1100}\u{1161}\u{11A8} decomposed Hangul, a\u{0308}\u{0304} stacked marks, \u{FE0F} stray selector",
]

/// The tiny fixture's byte-level tokenizer and, for each byte, its one-byte token.
private let tokenizer = try! Tokenizer(directory: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/models/tiny"))
private let byteTokens: [Int] = {
    var map = [Int](repeating: -1, count: 256)
    for id in 0..<tokenizer.vocabularySize where !tokenizer.isSpecial(id) {
        let bytes = tokenizer.tokenBytes(id)
        if bytes.count == 1, map[Int(bytes[0])] < 0 { map[Int(bytes[0])] = id }
    }
    return map
}()

/// Tokens for `text`: mostly single bytes (cutting every UTF-8 sequence), sometimes the tokenizer's own encoding of a
/// run of whole scalars.
private func tokens(for text: String, seed: UInt64) -> [Int] {
    var generator = SeededGenerator(seed: seed)
    var out: [Int] = []
    let scalars = Array(text.unicodeScalars)
    var i = 0
    while i < scalars.count {
        if generator.next() % 3 == 0 {
            let run = Int(generator.next() % 4) + 1
            let piece = String(String.UnicodeScalarView(scalars[i..<min(scalars.count, i + run)]))
            let encoded = tokenizer.encode(piece, parseSpecialTokens: false)
            // The tokenizer normalizes to NFC; keep its tokens only where that changes nothing.
            if tokenizer.decode(encoded).utf8.elementsEqual(piece.utf8) {
                out += encoded
                i += run
                continue
            }
            out += piece.utf8.map { byteTokens[Int($0)] }
            i += run
        } else {
            out += String(scalars[i]).utf8.map { byteTokens[Int($0)] }
            i += 1
        }
    }
    return out
}

/// Runs the tokens through a decoding state; returns the streamed deltas and the final text.
private func decode(_ ids: [Int], stop: [String]) -> (deltas: [String], text: String) {
    var parameters = GenerationParameters()
    parameters.sampling.temperature = 0
    parameters.stop = stop
    var deltas: [String] = []
    let vocab = tokenizer.vocabularySize
    let state = DecodingState(parameters: parameters, tokenizer: tokenizer, vocab: vocab, eos: [], prompt: [],
                              maxNew: ids.count + 1, timings: Timings(), usage: Usage(), started: .now(), grammar: nil,
                              emit: { if case .delta(let text, _, _) = $0 { deltas.append(text) } })
    var logits = [Float](repeating: -1, count: vocab)
    for id in ids {
        for i in logits.indices { logits[i] = -1 }
        logits[id] = 10
        if logits.withUnsafeMutableBufferPointer({ state.step($0.baseAddress!) }) == nil { break }
    }
    return (deltas, state.complete().text)
}

@Test(arguments: texts) func streamedDeltasAddUpToTheAnswerByteForByte(_ text: String) {
    #expect(byteTokens.allSatisfy { $0 >= 0 }, "the fixture tokenizer lacks some one-byte tokens")
    for seed in 0..<25 as Range<UInt64> {
        let ids = tokens(for: text, seed: seed)
        let (deltas, answer) = decode(ids, stop: [])
        #expect(Array(answer.utf8) == Array(text.utf8), "seed \(seed): the answer differs from the text")
        #expect(Array(deltas.joined().utf8) == Array(answer.utf8), "seed \(seed): streamed \(deltas.joined().debugDescription)")
    }
}

@Test(arguments: texts) func stopStringsCutStreamAndAnswerAlike(_ text: String) {
    let scalars = Array(text.unicodeScalars)
    for seed in 0..<15 as Range<UInt64> {
        var generator = SeededGenerator(seed: seed &+ 1000)
        // A stop string taken from the middle of the text (so it does occur), and one that never does.
        let start = Int(generator.next() % UInt64(scalars.count - 4)) + 1
        let stop = String(String.UnicodeScalarView(scalars[start..<start + 3]))
        let (deltas, answer) = decode(tokens(for: text, seed: seed), stop: [stop, "never-here-\u{10FFFF}"])
        let expected = text.utf8.firstRange(of: stop.utf8).map { String(decoding: text.utf8[..<$0.lowerBound], as: UTF8.self) } ?? text
        #expect(Array(answer.utf8) == Array(expected.utf8), "seed \(seed), stop \(stop.debugDescription)")
        #expect(Array(deltas.joined().utf8) == Array(answer.utf8), "seed \(seed), stop \(stop.debugDescription)")
        #expect(!deltas.joined().contains(stop))
    }
}

@Test func longStopListsStayCheapPerToken() {
    // 16 stop strings of 256 bytes over a 20,000-token answer: bounded per step, not by the answer's length.
    var stops = StopSequences((0..<16).map { String(repeating: "\($0 % 10)", count: 255) + "!" })
    let start = ContinuousClock.now
    var total = 0
    for i in 0..<20_000 { total += stops.append(i % 7 == 0 ? "55555" : "word ").emit.utf8.count }
    total += stops.flush().utf8.count
    #expect(total == stops.fullText.utf8.count)
    #expect(ContinuousClock.now - start < .seconds(20))
}
