import Foundation
import Testing
@testable import Engine
import JSON

// MARK: - Schema compiler: each supported keyword, each refused keyword

private func schema(_ text: String) throws -> JSONSchema { try JSONSchema.parse(Data(text.utf8)) }

@Test func supportedKeywordsParse() throws {
    #expect(try schema(#"{"type":"boolean"}"#).root == .boolean)
    #expect(try schema(#"{"type":"null"}"#).root == .null)
    #expect(try schema("{}").root == .any)
    #expect(try schema("true").root == .any)
    #expect(try schema(#"{"type":"integer","minimum":1,"maximum":9}"#).root == .integer(minimum: 1, maximum: 9))
    #expect(try schema(#"{"type":"integer","exclusiveMinimum":1,"exclusiveMaximum":9}"#).root == .integer(minimum: 2, maximum: 8))
    #expect(try schema(#"{"type":"integer","minimum":1.5}"#).root == .integer(minimum: 2, maximum: nil))
    #expect(try schema(#"{"type":"number","minimum":-1,"maximum":1}"#).root
            == .number(minimum: -1, maximum: 1, exclusiveMinimum: false, exclusiveMaximum: false))
    #expect(try schema(#"{"type":"number","exclusiveMinimum":0}"#).root
            == .number(minimum: 0, maximum: nil, exclusiveMinimum: true, exclusiveMaximum: false))
    #expect(try schema(#"{"type":"string","minLength":2,"maxLength":5}"#).root == .string(minLength: 2, maxLength: 5, pattern: nil))
    #expect(try schema(#"{"type":"string","pattern":"^[0-9]{4}$"}"#).root == .string(minLength: 0, maxLength: nil, pattern: "^[0-9]{4}$"))
    #expect(try schema(#"{"type":"string","format":"date"}"#).root == .string(minLength: 0, maxLength: nil, pattern: StringFormat.date))
    #expect(try schema(#"{"type":"string","enum":["a","b","a"]}"#).root == .enumeration([.string("a"), .string("b")]))
    #expect(try schema(#"{"const":3}"#).root == .enumeration([.number(3)]))
    #expect(try schema(#"{"type":"array","items":{"type":"null"},"minItems":1,"maxItems":2}"#).root
            == .array(items: .null, minItems: 1, maxItems: 2))
    #expect(try schema(#"{"type":["string","null"]}"#).root == .anyOf([.string(minLength: 0, maxLength: nil, pattern: nil), .null]))
    #expect(try schema(#"{"anyOf":[{"type":"integer"},{"type":"boolean"}],"title":"x"}"#).root
            == .anyOf([.integer(minimum: nil, maximum: nil), .boolean]))
    let object = try schema(#"""
    {"type":"object","title":"T","description":"d","properties":{"b":{"type":"boolean"},"a":{"type":"null"}},
     "required":["a"],"additionalProperties":false}
    """#)
    #expect(object.root == .object(properties: [.init(name: "b", schema: .boolean, required: false),
                                                .init(name: "a", schema: .null, required: true)], additionalProperties: false))
    let refs = try schema(#"""
    {"$defs":{"P":{"type":"object","properties":{"x":{"$ref":"#/$defs/N"}},"required":["x"]},"N":{"type":"integer"}},
     "type":"array","items":{"$ref":"#/$defs/P"}}
    """#)
    #expect(refs.root == .array(items: .object(properties: [.init(name: "x", schema: .integer(minimum: nil, maximum: nil), required: true)],
                                               additionalProperties: true), minItems: 0, maxItems: nil))
    #expect(try schema(##"{"definitions":{"N":{"type":"null"}},"$ref":"#/definitions/N"}"##).root == .null)
    // Type inferred from keywords.
    #expect(try schema(#"{"maxLength":3}"#).root == .string(minLength: 0, maxLength: 3, pattern: nil))
}

@Test(arguments: [
    ("oneOf", #"{"oneOf":[{"type":"string"}]}"#),
    ("allOf", #"{"allOf":[{"type":"string"}]}"#),
    ("not", #"{"not":{"type":"string"}}"#),
    ("if", #"{"if":{"type":"string"},"then":{}}"#),
    ("patternProperties", #"{"type":"object","patternProperties":{"a":{}}}"#),
    ("propertyNames", #"{"type":"object","propertyNames":{}}"#),
    ("minProperties", #"{"type":"object","minProperties":1}"#),
    ("maxProperties", #"{"type":"object","maxProperties":1}"#),
    ("uniqueItems", #"{"type":"array","uniqueItems":true}"#),
    ("contains", #"{"type":"array","contains":{}}"#),
    ("prefixItems", #"{"type":"array","prefixItems":[{}]}"#),
    ("multipleOf", #"{"type":"number","multipleOf":2}"#),
    ("dependentRequired", #"{"type":"object","dependentRequired":{}}"#),
    ("unevaluatedProperties", #"{"type":"object","unevaluatedProperties":false}"#),
    ("nullable", #"{"type":"string","nullable":true}"#),
    ("minimum", #"{"type":"string","minimum":1}"#),
    ("maxLength", #"{"type":"integer","maxLength":1}"#),
    ("type", ##"{"$ref":"#/$defs/A","type":"string","$defs":{"A":{}}}"##),
    ("type", #"{"anyOf":[{}],"type":"string"}"#),
    ("minLength", #"{"enum":["a"],"minLength":1}"#),
])
func unsupportedKeywordsAreNamed(keyword: String, text: String) throws {
    do {
        _ = try schema(text)
        Issue.record("\(keyword) was accepted")
    } catch let error as SchemaError {
        guard case .unsupportedKeyword(let named, _) = error else { Issue.record("wrong error \(error)"); return }
        #expect(named == keyword)
        #expect(error.description.contains("'\(keyword)'"))
    }
}

@Test(arguments: [
    #"{"type":"object","additionalProperties":{"type":"string"}}"#,
    #"{"type":"array","items":[{"type":"string"}]}"#,
    #"{"type":"string","format":"email"}"#,
    #"{"type":"string","pattern":"(a)\\1"}"#,
    #"{"type":"string","pattern":"(?=a)"}"#,
    #"{"type":"string","pattern":"\\bword"}"#,
    #"{"type":"string","pattern":"\\p{L}"}"#,
    #"{"type":"string","pattern":"a\"b"}"#,
    #"{"type":"string","pattern":"a^b"}"#,
    #"{"type":"string","pattern":"[0-9]+","maxLength":4}"#,
    #"{"type":"fraction"}"#,
])
func unsupportedValuesAreRefused(text: String) throws {
    #expect(throws: SchemaError.self) { try schema(text) }
    do { _ = try schema(text) } catch let error as SchemaError {
        if case .unsupportedValue = error {} else { Issue.record("expected unsupportedValue, got \(error)") }
    }
}

@Test(arguments: [
    #"{"type":"integer","minimum":5,"maximum":4}"#,
    #"{"type":"number","exclusiveMinimum":1,"maximum":1}"#,
    #"{"type":"string","minLength":3,"maxLength":2}"#,
    #"{"type":"array","minItems":3,"maxItems":2}"#,
    #"{"enum":[]}"#,
    #"{"type":"string","enum":[1]}"#,
    #"{"type":"object","properties":{},"required":["x"]}"#,
    "false",
])
func invalidSchemasAreRefused(text: String) throws {
    #expect(throws: SchemaError.self) { try schema(text) }
}

@Test func referencesMustResolveAndNotRecurse() throws {
    #expect(throws: SchemaError.unresolvedReference("#/$defs/Missing", path: "#")) { try schema(##"{"$ref":"#/$defs/Missing"}"##) }
    #expect(throws: SchemaError.self) {
        try schema(##"{"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}},"$ref":"#/$defs/N"}"##)
    }
    do {
        _ = try schema(##"{"$defs":{"N":{"type":"array","items":{"$ref":"#/$defs/N"}}},"$ref":"#/$defs/N"}"##)
        Issue.record("recursion accepted")
    } catch let error as SchemaError {
        guard case .recursiveReference = error else { Issue.record("\(error)"); return }
    }
}

@Test func patternSubsetCompiles() throws {
    func matches(_ pattern: String, _ text: String) throws -> Bool {
        let dfa = try PatternDFA(pattern)
        var state: Int32 = 0
        for b in text.utf8 {
            state = dfa.next(state, b)
            if state < 0 { return false }
        }
        return dfa.accepting[Int(state)]
    }
    #expect(try matches("^\\d{4}-\\d{2}$", "2024-05"))
    #expect(try !matches("^\\d{4}-\\d{2}$", "2024-5"))
    #expect(try matches("-?[0-9]+(\\.[0-9]{1,2})?", "-12.5"))
    #expect(try !matches("-?[0-9]+(\\.[0-9]{1,2})?", "12.555"))
    #expect(try matches("(cat|dog)s*", "dogsss"))
    #expect(try matches("[^a-z]x?", "Q"))
    #expect(try matches("é+", "éé"))
    #expect(try matches("a{2,}", "aaaa"))
    #expect(try !matches("a{2,}", "a"))
    #expect(try matches(StringFormat.date, "2024-12-31"))
    #expect(try !matches(StringFormat.date, "2024-13-01"))
    #expect(try matches(StringFormat.patterns["date-time"]!, "2024-12-31T23:59:00Z"))
    // `.` never produces a quote, a backslash or a control character.
    #expect(try !matches(".", "\""))
    #expect(try !matches(".", "\\"))
    #expect(try !matches(".", "\n"))
}

@Test func responseFormatAPI() throws {
    #expect(ResponseFormat.jsonObject.schema == .anyObject)
    let s = try schema(#"{"type":"boolean"}"#)
    #expect(ResponseFormat.jsonSchema(name: "b", schema: s, strict: true).schema == s)
    var p = GenerationParameters()
    p.responseFormat = .jsonObject
    #expect(p.responseFormat == .jsonObject)
    #expect(JSONWriter.quoted("a\"b\\\n\u{01}é") == #""a\"b\\\n\u0001é""#)
    #expect(try JSONValue.parse(#" {"b": [1, 2.5e3, "x\u00e9"], "a": null} "#).compactText == #"{"b":[1,2.5e3,"xé"],"a":null}"#)
}

/// Surrogate escapes: pairs combine, anything else becomes U+FFFD and never swallows the escape after it; no input
/// traps (a lone high surrogate before `\u0041` once underflowed and killed the server).
@Test func surrogateEscapesDecodeWithoutTrapping() throws {
    func text(_ json: String) throws -> String? {
        guard case .string(let s) = try JSONValue.parse(json) else { return nil }
        return s
    }
    #expect(try text(#""\ud83d\ude00""#) == "😀")
    #expect(try text(#""\ud800\u0041""#) == "\u{FFFD}A")
    #expect(try text(#""\ud800\ud800\udc00""#) == "\u{FFFD}\u{10000}")
    #expect(try text(#""\udc00x""#) == "\u{FFFD}x")
    #expect(try text(#""\ud800""#) == "\u{FFFD}")
    #expect(throws: (any Error).self) { try text(#""\u+041""#) }
    #expect(throws: (any Error).self) { try text(#""\ud800\u""#) }
}
