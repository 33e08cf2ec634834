import Foundation
import Testing
@testable import Engine
import JSON

// Schemas that once took minutes or gigabytes to compile or mask: each is refused with the limit it broke, or compiled
// in a bounded time when it is legitimate (identical branches merged, thousands of optional properties), and the
// compile stops when its request is cancelled. The time bounds are generous guards against hangs, not benchmarks.

private func parse(_ text: String, limits: SchemaLimits = .default, isCancelled: @escaping () -> Bool = { false }) throws -> JSONSchema {
    try JSONSchema.parse(try JSONParser.parse(text), limits: limits, isCancelled: isCancelled)
}

/// The limit named by a `.tooComplex` error, or nil.
private func refusedLimit(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let SchemaError.tooComplex(limit, _, _, _) {
        return limit
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// Runs `body` and checks it ended within `seconds`.
private func withinSeconds<T>(_ seconds: Double, _ what: String, _ body: () throws -> T) rethrows -> T {
    let start = ContinuousClock.now
    let result = try body()
    let elapsed = ContinuousClock.now - start
    #expect(elapsed < .seconds(seconds), "\(what) took \(elapsed)")
    return result
}

@Test func nestedQuantifiersAreRefusedQuickly() {
    let schema = #"{"type":"string","pattern":"((a{1,100}){1,100}){1,100}"}"#
    let limit = withinSeconds(5, "nested quantifiers") { refusedLimit { _ = try parse(schema) } }
    #expect(limit == "max_pattern_states")
    let alternation = #"{"type":"string","pattern":"(a|b|c|d|e|f|g|h)*(a|b){1,60}x(c|d){1,60}"}"#
    _ = withinSeconds(5, "wide alternation") { refusedLimit { _ = try parse(alternation) } }
    // An ordinary pattern is still fine.
    #expect(throws: Never.self) { try parse(#"{"type":"string","pattern":"^[A-Z]{2}-\\d{4}$"}"#) }
}

@Test func identicalAnyOfBranchesAreMerged() throws {
    let branch = #"{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}"#
    let text = #"{"anyOf":["# + Array(repeating: branch, count: 2_000).joined(separator: ",") + "]}"
    let schema = try withinSeconds(10, "2,000 identical branches") { try parse(text) }
    guard case .object(let properties, _) = schema.root else { Issue.record("not merged: \(schema.root)"); return }
    #expect(properties.map(\.name) == ["a"])
}

@Test func tooManyDifferentAnyOfBranchesAreRefused() {
    let branches = (0..<3_000).map { #"{"const":"v\#($0)"}"# }.joined(separator: ",")
    #expect(refusedLimit { _ = try parse(#"{"anyOf":[\#(branches)]}"#) } == "max_any_of_branches")
}

@Test func doublingReferenceChainsAreRefused() {
    // Each definition refers to the next one twice: 2^40 nodes once expanded.
    var defs: [String] = []
    for i in 0..<40 {
        defs.append(##""d\##(i)":{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/d\##(i + 1)"},{"type":"object","properties":{"x":{"$ref":"#/$defs/d\##(i + 1)"}}}]}}"##)
    }
    defs.append(#""d40":{"type":"integer"}"#)
    let text = ##"{"$defs":{\##(defs.joined(separator: ","))},"$ref":"#/$defs/d0"}"##
    let limit = withinSeconds(5, "$ref doubling") { refusedLimit { _ = try parse(text) } }
    #expect(limit == "max_nodes" || limit == "max_depth")
}

@Test func hugeEnumsAreRefusedWithoutQuadraticWork() {
    let values = (0..<100_000).map { "\"value \($0)\"" }.joined(separator: ",")
    let limit = withinSeconds(10, "100k enum values") { refusedLimit { _ = try parse(#"{"enum":[\#(values)]}"#) } }
    #expect(limit == "max_enum_values")
    // Duplicates do not count against the limit.
    let repeated = Array(repeating: "\"same\"", count: 50_000).joined(separator: ",")
    #expect(throws: Never.self) { try parse(#"{"enum":[\#(repeated)]}"#) }
}

@Test func thousandsOfOptionalPropertiesCompileInLinearSize() throws {
    let properties = (0..<4_000).map { #""p\#($0)":{"type":"integer"}"# }.joined(separator: ",")
    let text = #"{"type":"object","properties":{\#(properties)},"additionalProperties":false}"#
    let schema = try withinSeconds(10, "4,000 optional properties") { try parse(text) }
    let grammar = try withinSeconds(10, "compiling them") { try JSONGrammar(schema: schema) }
    // Keys may be skipped, never reordered: p3999 alone is fine, p5 after p7 is not.
    #expect(accepts(grammar, #"{"p3999":1}"#))
    #expect(accepts(grammar, #"{"p0":1,"p7":2,"p3999":3}"#))
    #expect(!accepts(grammar, #"{"p7":1,"p5":2}"#))
    #expect(!accepts(grammar, #"{"q":1}"#))
}

@Test func requiredPropertiesStillBoundWhichKeysMayCome() throws {
    let schema = try parse(#"{"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"},"c":{"type":"null"}},"required":["b"]}"#)
    let grammar = try JSONGrammar(schema: schema)
    #expect(accepts(grammar, #"{"b":null}"#))
    #expect(accepts(grammar, #"{"a":null,"b":null,"c":null}"#))
    #expect(!accepts(grammar, #"{"c":null}"#))  // b is required before c
    #expect(!accepts(grammar, #"{"a":null}"#))
}

@Test func limitsAreConfigurableAndNamed() {
    var limits = SchemaLimits()
    limits.maxDepth = 3
    #expect(refusedLimit { _ = try parse(#"{"type":"array","items":{"type":"array","items":{"type":"array","items":{}}}}"#, limits: limits) } == "max_depth")
    limits = SchemaLimits()
    limits.maxLiteralBytes = 20
    #expect(refusedLimit { _ = try parse(#"{"enum":["a long enough value","another long value"]}"#, limits: limits) } == "max_literal_bytes")
    limits = SchemaLimits()
    limits.maxPatternBytes = 4
    #expect(refusedLimit { _ = try parse(#"{"type":"string","pattern":"abcdef"}"#, limits: limits) } == "max_pattern_bytes")
    limits = SchemaLimits()
    limits.maxSteps = 100
    let properties = (0..<200).map { #""p\#($0)":{"type":"integer"}"# }.joined(separator: ",")
    #expect(refusedLimit { _ = try parse(#"{"type":"object","properties":{\#(properties)}}"#, limits: limits) } == "max_steps")
    let message = SchemaError.tooComplex(limit: "max_nodes", value: 5, path: "#/a", reason: "more than 5 schemas").description
    #expect(message.contains("max_nodes") && message.contains("#/a"))
}

@Test func compilingStopsWhenCancelled() {
    let values = (0..<900).map { "\"v\($0)\"" }.joined(separator: ",")
    let branches = (0..<60).map { i in #"{"type":"object","properties":{"k\#(i)":{"enum":[\#(values)]}},"required":["k\#(i)"]}"# }
    let text = #"{"type":"array","items":{"anyOf":[\#(branches.joined(separator: ","))]}}"#
    var limits = SchemaLimits()
    limits.maxLiteralBytes = .max
    #expect(throws: CancellationError.self) { try parse(text, limits: limits, isCancelled: { true }) }
}

/// Whether the grammar accepts `text` as a complete document.
private func accepts(_ grammar: JSONGrammar, _ text: String) -> Bool {
    var stacks: [Stack] = [[Frame(rule: grammar.root)]]
    for byte in text.utf8 {
        var next: [Stack] = []
        for stack in stacks {
            var copy = stack
            grammar.advance(&copy, byte, &next)
        }
        if next.isEmpty { return false }
        stacks = next
    }
    return stacks.contains { grammar.accepts($0) }
}
