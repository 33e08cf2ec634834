import Foundation
import Testing
import Qwen3VL
@testable import Engine
import JSON

// MARK: - Random weights under a constraint still write schema-valid JSON (checked by Python jsonschema)

/// Schemas shaped like the analysis tasks (OCR, describe, moderation, sentiment, promo extraction).
enum TaskSchemas {
    static let all: [(String, String)] = [
        ("ocr", #"{"type":"object","properties":{"text":{"type":"string","maxLength":60},"language":{"type":"string","enum":["en","de","fr","es","other"]},"lines":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":3}},"required":["text","language","lines"],"additionalProperties":false}"#),
        ("describe", #"{"type":"object","properties":{"caption":{"type":"string","minLength":1,"maxLength":40},"objects":{"type":"array","items":{"type":"object","properties":{"label":{"type":"string","maxLength":12},"count":{"type":"integer","minimum":1,"maximum":20}},"required":["label","count"],"additionalProperties":false},"minItems":1,"maxItems":3},"tags":{"type":"array","items":{"type":"string","maxLength":10},"maxItems":4}},"required":["caption","objects"],"additionalProperties":false}"#),
        ("moderation", #"{"type":"object","properties":{"flagged":{"type":"boolean"},"categories":{"type":"array","items":{"enum":["spam","hate","violence","adult","self_harm"]},"maxItems":3},"severity":{"type":"integer","minimum":0,"maximum":3},"reason":{"anyOf":[{"type":"string","maxLength":30},{"type":"null"}]}},"required":["flagged","categories","severity","reason"],"additionalProperties":false}"#),
        ("sentiment", ##"{"type":"object","properties":{"sentiment":{"enum":["positive","negative","neutral","mixed"]},"score":{"type":"number","minimum":-1,"maximum":1},"aspects":{"type":"array","items":{"$ref":"#/$defs/aspect"},"maxItems":2}},"required":["sentiment","score","aspects"],"additionalProperties":false,"$defs":{"aspect":{"type":"object","properties":{"aspect":{"type":"string","maxLength":15},"polarity":{"enum":["positive","negative","neutral"]}},"required":["aspect","polarity"],"additionalProperties":false}}}"##),
        ("promo", #"{"type":"object","properties":{"is_promo":{"type":"boolean"},"brand":{"type":["string","null"],"maxLength":20},"price":{"type":"number","minimum":0,"maximum":100000},"currency":{"type":"string","pattern":"^[A-Z]{3}$"},"discount_percent":{"type":"integer","minimum":0,"maximum":100},"valid_until":{"anyOf":[{"type":"string","format":"date"},{"type":"null"}]},"code":{"type":"string","pattern":"^[A-Z0-9]{4,8}$"}},"required":["is_promo","brand","price","currency"],"additionalProperties":false}"#),
        ("free-object", #"{"type":"object"}"#),
    ]
}

/// Seeded random schemas over the whole supported subset, kept small enough that random weights finish them.
struct SchemaGenerator {
    var rng: SeededGenerator
    init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    mutating func schema(depth: Int) -> String {
        let kinds = depth >= 2 ? ["string", "integer", "number", "boolean", "null", "enum", "pattern"]
            : ["object", "object", "array", "string", "integer", "number", "boolean", "enum", "anyOf", "pattern", "const"]
        switch kinds[int(0...kinds.count - 1)] {
        case "object":
            let n = int(1...4)
            var props: [String] = [], required: [String] = []
            for i in 0..<n {
                let name = ["id", "name", "value", "kind", "items", "ok", "note", "é_k", "a\"q"][int(0...8)] + "\(i)"
                props.append("\(JSONWriter.quoted(name)):\(schema(depth: depth + 1))")
                if chance(0.6) { required.append(JSONWriter.quoted(name)) }
            }
            return #"{"type":"object","properties":{\#(props.joined(separator: ","))},"required":[\#(required.joined(separator: ","))],"additionalProperties":false}"#
        case "array":
            let lo = int(0...2)
            return #"{"type":"array","items":\#(schema(depth: depth + 1)),"minItems":\#(lo),"maxItems":\#(lo + int(0...2))}"#
        case "string":
            let lo = int(0...3)
            return #"{"type":"string","minLength":\#(lo),"maxLength":\#(lo + int(0...12))}"#
        case "integer":
            let lo = int(-50...50)
            return chance(0.2) ? #"{"type":"integer"}"# : #"{"type":"integer","minimum":\#(lo),"maximum":\#(lo + int(0...500))}"#
        case "number":
            return chance(0.3) ? #"{"type":"number","exclusiveMinimum":0,"maximum":1}"# : #"{"type":"number","minimum":-\#(int(0...9)).5,"maximum":\#(int(0...999))}"#
        case "boolean": return #"{"type":"boolean"}"#
        case "null": return #"{"type":"null"}"#
        case "enum": return #"{"enum":["a","b c",3,true,null,"ü"]}"#
        case "const": return #"{"const":{"x":[1,"y"]}}"#
        case "pattern":
            return [#"{"type":"string","pattern":"^[0-9]{2}-[a-z]{1,3}$"}"#, #"{"type":"string","format":"date"}"#,
                    #"{"type":"string","pattern":"^-?\\d+(\\.\\d{1,2})?$"}"#, #"{"type":"string","pattern":"^(yes|no|maybe)$"}"#][int(0...3)]
        default:
            return #"{"anyOf":[\#(schema(depth: depth + 1)),\#(schema(depth: depth + 1)),{"type":"null"}]}"#
        }
    }
}

/// Validates (schema, output) pairs with Python's jsonschema; returns the failures. Fails loudly when the
/// validator is missing.
func validateWithJSONSchema(_ cases: [(schema: String, output: String)]) throws -> [String] {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-grammar-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let input = directory.appendingPathComponent("cases.jsonl")
    var lines = ""
    for c in cases {
        let line = try JSONSerialization.data(withJSONObject: ["schema": c.schema, "output": c.output])
        lines += String(decoding: line, as: UTF8.self) + "\n"
    }
    try lines.write(to: input, atomically: true, encoding: .utf8)
    let script = """
    import json, sys
    try:
        import jsonschema
    except ImportError:
        print("MISSING: python3 module jsonschema is required (pip install jsonschema)"); sys.exit(3)
    bad = 0
    for line in open(sys.argv[1]):
        case = json.loads(line)
        schema = json.loads(case["schema"])
        try:
            value = json.loads(case["output"])
            jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)
        except Exception as e:
            bad += 1
            print("INVALID", repr(case["output"]), "for", case["schema"], "--", str(e).splitlines()[0])
    print("CHECKED", sum(1 for _ in open(sys.argv[1])))
    """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, input.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0, output.contains("CHECKED \(cases.count)") else {
        throw ValidatorError(message: "python3 jsonschema validation did not run: \(output)")
    }
    return output.split(separator: "\n").filter { $0.hasPrefix("INVALID") }.map(String.init)
}

struct ValidatorError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

private func run(_ schemaText: String, seed: UInt64, maxTokens: Int, prompt: PreparedPrompt) throws -> GenerationResult {
    var p = GenerationParameters()
    p.maxTokens = maxTokens
    p.sampling.temperature = 1
    p.sampling.seed = seed
    p.responseFormat = schemaText == #"{"type":"object"}"# ? .jsonObject
        : .jsonSchema(name: "t", schema: try JSONSchema.parse(Data(schemaText.utf8)), strict: true)
    return try TinyModel.engine.generator.generate(prompt, parameters: p)
}

@Test func randomWeightsWriteValidJSONForTaskAndGeneratedSchemas() throws {
    let engine = TinyModel.engine
    let prompt = try engine.processor.prepare([ChatMessage(role: .user, text: "Return JSON.")], images: [])
    var schemas = TaskSchemas.all.map(\.1)
    var generator = SchemaGenerator(seed: 2024)
    for _ in 0..<50 { schemas.append(generator.schema(depth: 0)) }
    var cases: [(schema: String, output: String)] = []
    var truncated = 0, total = 0
    for schemaText in schemas {
        for seed: UInt64 in [1, 2, 3] {
            let r = try run(schemaText, seed: seed, maxTokens: 400, prompt: prompt)
            total += 1
            switch r.finishReason {
            case .stop: cases.append((schemaText, r.text))
            case .length: truncated += 1
            case .cancelled, .repetition: Issue.record("\(r.finishReason): constrained answers are neither cancelled nor guarded")
            }
        }
    }
    let failures = try validateWithJSONSchema(cases)
    #expect(failures.isEmpty, "\(failures.count) invalid outputs:\n\(failures.prefix(10).joined(separator: "\n"))")
    // Most runs finish: the constraint (bounded strings, arrays) drives random weights to a closed document.
    #expect(cases.count * 10 >= total * 9, "only \(cases.count) of \(total) finished; \(truncated) hit max_tokens")
    print("grammar generation: \(cases.count) of \(total) finished with stop and validated; \(truncated) truncated")
}

@Test func hittingMaxTokensIsReportedAsLength() throws {
    let engine = TinyModel.engine
    let prompt = try engine.processor.prepare([ChatMessage(role: .user, text: "Return JSON.")], images: [])
    let schemaText = TaskSchemas.all[1].1
    for maxTokens in [1, 3, 6] {
        let r = try run(schemaText, seed: 7, maxTokens: maxTokens, prompt: prompt)
        #expect(r.finishReason == .length)
        #expect(r.tokenIDs.count == maxTokens)
        #expect((try? JSONSerialization.jsonObject(with: Data(r.text.utf8))) == nil, "truncated text parsed: \(r.text)")
    }
    // Complete answers end with .stop and parse; EOS is never produced before the JSON is complete.
    let r = try run(#"{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}"#, seed: 1, maxTokens: 50, prompt: prompt)
    #expect(r.finishReason == .stop)
    #expect(r.text == #"{"ok":true}"# || r.text == #"{"ok":false}"#)
}

@Test func invalidSchemasFailBeforeGenerating() throws {
    let engine = TinyModel.engine
    let prompt = try engine.processor.prepare([ChatMessage(role: .user, text: "hi")], images: [])
    var p = GenerationParameters()
    // Bounds beyond the digits constrained decoding writes are caught at compile time.
    p.responseFormat = .jsonSchema(name: "x", schema: JSONSchema(root: .integer(minimum: Int(1e17), maximum: nil)), strict: true)
    #expect(throws: SchemaError.self) { try engine.generator.generate(prompt, parameters: p) }
}
