import Foundation
import JSON
import Testing
@testable import Engine

/// `maxLength` bounds a string's tokens too, so the most tokens an answer can take follows from its schema
/// (`AnswerBudget`): checked against an adversary that writes the longest answer the mask allows, one byte per token
/// wherever it can (what a random-weight model may do).
@Suite struct AnswerBudgetTests {
    /// Each step the allowed token that ends nothing (no `"`, `]`, `}`) with the fewest bytes, else the shortest one;
    /// EOS only when nothing else is allowed. Returns the tokens written and the text.
    func longestAnswer(_ schemaText: String, limit: Int = 5_000) throws -> (tokens: Int, text: String, complete: Bool) {
        let matcher = try GrammarFixtures.matcher(schemaText)
        let vocabulary = GrammarFixtures.vocabulary
        var mask = matcher.makeMask()
        var bytes: [UInt8] = []
        var count = 0
        let closers: Set<UInt8> = [UInt8(ascii: "\""), UInt8(ascii: "]"), UInt8(ascii: "}")]
        while count < limit {
            matcher.fillMask(&mask)
            var best: (id: Int, ends: Bool, length: Int)?
            for id in 0..<vocabulary.size where mask[id] && !TinyModel.engine.model.eosTokenIDs.contains(id) {
                let token = vocabulary.bytes(of: id)
                guard !token.isEmpty else { continue }
                let candidate = (id: id, ends: token.contains { closers.contains($0) }, length: token.count)
                if let b = best, (b.ends ? 1 : 0, b.length) <= (candidate.ends ? 1 : 0, candidate.length) { continue }
                best = candidate
            }
            guard let best else { break }
            #expect(matcher.accept(token: best.id))
            bytes += vocabulary.bytes(of: best.id)
            count += 1
        }
        return (count, String(decoding: bytes, as: UTF8.self), matcher.isComplete)
    }

    static let bounded = #"""
    {"type":"object","properties":{
      "s":{"type":"string","maxLength":10},
      "list":{"type":"array","maxItems":3,"items":{"type":"string","maxLength":4}},
      "n":{"type":"integer","minimum":-5,"maximum":120},
      "x":{"type":"number","minimum":-1,"maximum":1},
      "e":{"enum":["yes","no"]},
      "o":{"type":["string","null"],"maxLength":5},
      "b":{"type":"boolean"}},
     "required":["s","list","n","x","e","o","b"]}
    """#

    @Test func theLongestAnswerStaysWithinTheWorstCase() throws {
        let worst = try #require(AnswerBudget.worstCaseTokens(try JSONSchema.parse(Data(Self.bounded.utf8))))
        let answer = try longestAnswer(Self.bounded)
        #expect(answer.complete, "\(answer.text)")
        #expect(answer.tokens <= worst, "\(answer.tokens) tokens > worst case \(worst): \(answer.text)")
        // The adversary did fill the strings and the array: the bound is met, not just far away.
        let value = try JSONValue.parse(answer.text)
        #expect(value["list"]?.arrayValue?.count == 3, "\(answer.text)")
        #expect(answer.tokens >= worst / 2, "\(answer.tokens) of \(worst)")
    }

    /// A string of many-byte characters written a byte per token ends after `maxLength` tokens; without the token
    /// count it would take three tokens a character.
    @Test func aStringWrittenAByteAtATimeClosesAfterMaxLengthTokens() throws {
        let schema = #"{"type":"object","properties":{"t":{"type":"string","maxLength":8}},"required":["t"]}"#
        let matcher = try GrammarFixtures.matcher(schema)
        let vocabulary = GrammarFixtures.vocabulary
        func single(_ byte: UInt8) -> Int? { (0..<vocabulary.size).first { Array(vocabulary.bytes(of: $0)) == [byte] } }
        for byte in Array(#"{"t":""#.utf8) { #expect(matcher.accept(token: try #require(single(byte)))) }
        // 中 = E4 B8 AD, one byte per token: 8 tokens fit (two whole characters and a lead byte's worth), then only
        // the rest of that character and the closing quote.
        let bytes = Array("中中中中".utf8)
        var accepted = 0
        for byte in bytes {
            guard matcher.accept(token: try #require(single(byte))) else { break }
            accepted += 1
        }
        #expect(accepted == 9, "\(accepted)")  // 8 tokens, then the continuation byte that completes the 3rd character
        #expect(!matcher.accept(token: try #require(single(0xE4))), "a new character after 8 tokens")
        #expect(matcher.accept(token: try #require(single(UInt8(ascii: "\"")))))
        #expect(matcher.accept(token: try #require(single(UInt8(ascii: "}")))) && matcher.isComplete)
    }

    @Test func unboundedSchemasHaveNoWorstCase() throws {
        for schema in [#"{"type":"object","properties":{"t":{"type":"string"}},"required":["t"]}"#,
                       #"{"type":"object","properties":{"t":{"type":"array","items":{"type":"boolean"}}},"required":["t"]}"#,
                       #"{"type":"object"}"#] {
            #expect(AnswerBudget.worstCaseTokens(try JSONSchema.parse(Data(schema.utf8))) == nil, "\(schema)")
        }
        let small = #"{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer","minimum":0,"maximum":1000}},"required":["ok","n"]}"#
        // {"ok":false,"n":1000} is 21 bytes: every byte a token at worst.
        #expect(AnswerBudget.worstCaseTokens(try JSONSchema.parse(Data(small.utf8))) == 21)
    }
}
