import Foundation
import Testing
@testable import Engine

// MARK: - The automaton, byte by byte, and the masks on the tiny vocabulary

enum GrammarFixtures {
    static let vocabulary: GrammarVocabulary = {
        let engine = TinyModel.engine
        return engine.generator.grammarVocabularies.vocabulary(tokenizer: engine.processor.tokenizer,
                                                              size: engine.model.configuration.text.vocabSize)
    }()

    static func matcher(_ schemaText: String) throws -> GrammarMatcher {
        try GrammarMatcher(format: .jsonSchema(name: "t", schema: try JSONSchema.parse(Data(schemaText.utf8)), strict: true),
                           vocabulary: vocabulary, eosTokenIDs: TinyModel.engine.model.eosTokenIDs)
    }

    /// Whether the whole text is accepted and complete.
    static func accepts(_ schemaText: String, _ document: String) throws -> Bool {
        let m = try matcher(schemaText)
        return m.accept(bytes: Array(document.utf8)) && m.isComplete
    }
}

private func accepts(_ schema: String, _ document: String) throws -> Bool { try GrammarFixtures.accepts(schema, document) }

@Test func objectsFollowPropertyOrderAndRequiredKeys() throws {
    let s = #"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"boolean"},"c":{"type":"null"}},"required":["b"],"additionalProperties":false}"#
    #expect(try accepts(s, #"{"a":1,"b":true,"c":null}"#))
    #expect(try accepts(s, #"{"b":false}"#))
    #expect(try accepts(s, #"{"a":-3,"b":true}"#))
    #expect(try !accepts(s, #"{"b":true,"a":1}"#))      // out of order
    #expect(try !accepts(s, #"{"a":1}"#))               // missing required
    #expect(try !accepts(s, #"{}"#))
    #expect(try !accepts(s, #"{"b":true,"d":1}"#))      // unknown key
    #expect(try !accepts(s, #"{"b": true}"#))           // no whitespace
    #expect(try !accepts(s, #"{"b":true,}"#))
}

@Test func freeJSONObjects() throws {
    let m = try GrammarMatcher(format: .jsonObject, vocabulary: GrammarFixtures.vocabulary, eosTokenIDs: [])
    #expect(m.accept(bytes: Array(#"{"k":[1,-2.5,"s\n\u00e9",{"x":null,"y":[]},true,false],"":{}}"#.utf8)))
    #expect(m.isComplete && !m.canContinue)
    for bad in [#"[1]"#, #"{"a":01}"#, #"{"a":1.}"#, #"{'a':1}"#, #"{"a":tru}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\u{01}\"}"] {
        let m = try GrammarMatcher(format: .jsonObject, vocabulary: GrammarFixtures.vocabulary, eosTokenIDs: [])
        #expect(!(m.accept(bytes: Array(bad.utf8)) && m.isComplete), "accepted \(bad)")
    }
}

@Test func integerBoundsAreKeptWhileTyping() throws {
    let s = #"{"type":"integer","minimum":-5,"maximum":120}"#
    for ok in ["-5", "0", "7", "99", "120", "-0"] { #expect(try accepts(s, ok), "\(ok)") }
    for bad in ["-6", "121", "1000", "007", "1.5", "-"] { #expect(try !accepts(s, bad), "\(bad)") }
    // "13" can only become 13 or 130+ (too big): after "13" no digit is allowed.
    let m = try GrammarFixtures.matcher(s)
    #expect(m.accept(bytes: Array("13".utf8)))
    #expect(!m.accept(bytes: Array("0".utf8)))
    #expect(m.isComplete)
    // min 10: "1" must continue.
    let tens = try GrammarFixtures.matcher(#"{"type":"integer","minimum":10,"maximum":19}"#)
    #expect(tens.accept(bytes: [UInt8(ascii: "1")]))
    #expect(!tens.isComplete)
    #expect(tens.accept(bytes: Array("2".utf8)))
    #expect(tens.isComplete)
    #expect(!tens.accept(bytes: Array("9".utf8)))
}

@Test func numberBoundsAndFractions() throws {
    let s = #"{"type":"number","minimum":0.5,"exclusiveMaximum":2}"#
    for ok in ["0.5", "1", "1.999999", "0.75"] { #expect(try accepts(s, ok), "\(ok)") }
    for bad in ["0.4", "2", "2.0", "-1", "1e3", "1.9999999"] { #expect(try !accepts(s, bad), "\(bad)") }
    #expect(try accepts(#"{"type":"number"}"#, "-123.456"))
    #expect(try !accepts(#"{"type":"integer"}"#, "1.0"))
}

@Test func stringLengthsCountCharacters() throws {
    let s = #"{"type":"string","minLength":2,"maxLength":3}"#
    #expect(try accepts(s, #""ab""#))
    #expect(try accepts(s, #""éüß""#))       // 3 characters, 6 bytes
    #expect(try accepts(s, #""a\nb""#))      // escape counts once
    #expect(try !accepts(s, #""a""#))
    #expect(try !accepts(s, #""abcd""#))
    #expect(try accepts(#"{"type":"string","pattern":"^[A-Z]{3}$"}"#, #""EUR""#))
    #expect(try !accepts(#"{"type":"string","pattern":"^[A-Z]{3}$"}"#, #""EU""#))
    #expect(try accepts(#"{"type":"string","format":"date"}"#, #""2025-01-31""#))
}

@Test func enumsArraysAndAnyOf() throws {
    #expect(try accepts(#"{"enum":["red","green",1,12,null,{"a":[1]}]}"#, #""green""#))
    #expect(try accepts(#"{"enum":["red","green",1,12,null,{"a":[1]}]}"#, "12"))
    #expect(try accepts(#"{"enum":["red","green",1,12,null,{"a":[1]}]}"#, "1"))
    #expect(try accepts(#"{"enum":["red","green",1,12,null,{"a":[1]}]}"#, #"{"a":[1]}"#))
    #expect(try !accepts(#"{"enum":["red","green"]}"#, #""blue""#))
    let a = #"{"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":1,"maxItems":3}"#
    #expect(try accepts(a, "[1]"))
    #expect(try accepts(a, "[1,2,3]"))
    #expect(try !accepts(a, "[]"))
    #expect(try !accepts(a, "[1,2,3,4]"))
    let u = #"{"anyOf":[{"type":"object","properties":{"kind":{"const":"a"},"n":{"type":"integer"}},"required":["kind","n"]},{"type":"object","properties":{"kind":{"const":"b"},"s":{"type":"string"}},"required":["kind","s"]},{"type":"null"}]}"#
    #expect(try accepts(u, #"{"kind":"a","n":3}"#))
    #expect(try accepts(u, #"{"kind":"b","s":"x"}"#))
    #expect(try accepts(u, "null"))
    #expect(try !accepts(u, #"{"kind":"a","s":"x"}"#))
}

@Test func masksAllowExactlyTheTokensTheAutomatonAccepts() throws {
    // Compare the fast mask with a brute-force check of every token, at several positions.
    let tokenizer = TinyModel.engine.processor.tokenizer
    let s = #"{"type":"object","properties":{"name":{"type":"string","maxLength":12},"tags":{"type":"array","items":{"enum":["a","bb"]},"maxItems":2},"n":{"type":"number","minimum":-2,"maximum":50}},"required":["name","tags","n"]}"#
    for prefix in ["", "{", #"{"na"#, #"{"name":"#, #"{"name":"ab"#, #"{"name":"0123456789ab"#, #"{"name":"x","tags":["#,
                   #"{"name":"x","tags":["a","#, #"{"name":"x","tags":[],"n":4"#, #"{"name":"x","tags":[],"n":-1.5"#, "{\"name\":\"\u{e9}"] {
        let m = try GrammarFixtures.matcher(s)
        #expect(m.accept(bytes: Array(prefix.utf8)), "prefix \(prefix)")
        var mask = m.makeMask()
        m.fillMask(&mask)
        let added = Set(tokenizer.addedTokenIDs)
        for id in 0..<tokenizer.vocabularySize where !added.contains(id) {
            let bytes = tokenizer.tokenBytes(id)
            guard !bytes.isEmpty else { continue }
            let expected = m.advance(m.stacks, bytes) != nil
            if mask[id] != expected {
                Issue.record("prefix \(prefix): token \(id) \(String(decoding: bytes, as: UTF8.self).debugDescription) mask \(mask[id]) automaton \(expected)")
                break
            }
        }
    }
}

@Test func eosOnlyWhenComplete() throws {
    let eos = TinyModel.engine.model.eosTokenIDs
    let m = try GrammarFixtures.matcher(#"{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"]}"#)
    var mask = m.makeMask()
    m.fillMask(&mask)
    #expect(eos.allSatisfy { !mask[$0] })
    #expect(m.accept(bytes: Array(#"{"a":true}"#.utf8)))
    m.fillMask(&mask)
    #expect(mask.population == eos.count)
    #expect(eos.allSatisfy { mask[$0] })
    #expect(!m.canContinue)
    // A top-level number may stop or go on.
    let n = try GrammarFixtures.matcher(#"{"type":"integer"}"#)
    #expect(n.accept(bytes: Array("4".utf8)))
    n.fillMask(&mask)
    #expect(eos.allSatisfy { mask[$0] } && mask.population > eos.count)
}
