@testable import Analysis
import Foundation
import JSON
import Testing
import TestSupport

@Test func jsonRoundTripAndLenientExtraction() throws {
    let value = try JSONValue.parse(#"{"b": [1, 2.5, true, null], "a": "x\"y\u00e9\ud83d\ude00", "c": {}}"#)
    #expect(value["a"] == "x\"yé😀")
    #expect(value.sortedText == #"{"a":"x\"yé😀","b":[1,2.5,true,null],"c":{}}"#)
    #expect(try JSONValue.parse(value.sortedText) == value)
    #expect(LenientJSON.firstObject(in: "Sure! ```json\n{\"lines\": [\"a\"]}\n``` done") == ["lines": ["a"]])
    #expect(LenientJSON.firstObject(in: "I think {not json} then {\"ok\": 1}") == ["ok": 1])
    #expect(LenientJSON.firstObject(in: "no braces here") == nil)
    #expect(LenientJSON.firstObject(in: "{\"cut\": [1, 2") == nil)
    #expect(throws: JSONParseError.self) { try JSONValue.parse("{\"a\": 1} trailing") }
}

@Test func validatorCoversTheSubsetTheSchemasUse() {
    let schema: JSONValue = [
        "type": "object", "required": ["v", "n", "list"],
        "properties": [
            "v": ["type": "string", "enum": ["allow", "block"]],
            "n": ["type": "number", "minimum": -1, "maximum": 1],
            "list": ["type": "array", "items": ["type": "object", "required": ["k"], "properties": ["k": ["type": ["string", "null"]]]]],
            "i": ["type": "integer"],
        ],
    ]
    #expect(SchemaValidator.validate(["v": "allow", "n": 0.5, "list": [["k": nil], ["k": "x"]], "i": 3], against: schema).isEmpty)
    let problems = SchemaValidator.validate(["v": "maybe", "n": 2, "list": [["k": 1], [:]], "i": 1.5], against: schema)
    #expect(problems.contains { $0.hasPrefix("$.v:") && $0.contains("not one of") })
    #expect(problems.contains { $0.hasPrefix("$.n:") && $0.contains("above the maximum") })
    #expect(problems.contains { $0.hasPrefix("$.list[0].k:") })
    #expect(problems.contains { $0 == "$.list[1]: missing required property \"k\"" })
    #expect(problems.contains { $0.hasPrefix("$.i:") })
    #expect(SchemaValidator.validate("x", against: schema) == ["$: expected object, got string"])
}

@Test(arguments: TaskKind.allCases.filter { $0 != .custom })
func everyExampleSatisfiesItsSchemaAndPostProcesses(_ kind: TaskKind) throws {
    let task = try AnalysisTask.builtIn(kind)
    let example = TaskExamples.modelOutput(for: task)
    #expect(SchemaValidator.validate(example, against: task.schema).isEmpty)
    let context = PostContext(record: PostRecord(id: "1", text: "杯子很好看"), referenceYear: 2026, image: ImageFrame(width: 640, height: 480))
    let result = try task.result(fromModelOutput: "Here you go:\n" + example.sortedText, context: context)
    #expect(result.objectValue != nil)
}

@Test func notJSONAndWrongShapeAreClearItemErrors() throws {
    let task = try AnalysisTask.builtIn(.moderation)
    let context = PostContext(record: PostRecord(id: "1"), referenceYear: 2026)
    #expect(throws: TaskError("output was not valid JSON")) { try task.result(fromModelOutput: "狗 猫 gibberish", context: context) }
    do {
        _ = try task.result(fromModelOutput: #"{"verdict": "ban"}"#, context: context)
        Issue.record("expected a schema error")
    } catch let error as TaskError {
        #expect(error.description.hasPrefix("output does not match the moderation schema"))
        #expect(error.description.contains("$.verdict"))
    }
}

@Test func repairsBeforeValidation() throws {
    let task = try AnalysisTask.builtIn(.sentiment)
    // Missing arrays, a numeric string, an upper-case enum, a single string for a list.
    let text = #"{"observations": "box crushed", "polarity": "Negative", "score": "-1.7", "evidence": "crushed box"}"#
    let result = try task.result(fromModelOutput: text, context: PostContext(record: PostRecord(id: "1"), referenceYear: 2026))
    #expect(result["polarity"] == "negative")
    #expect(result["score"] == -1)  // clamped
    #expect(result["evidence"] == ["crushed box"])
    #expect(result["aspects"] == [])
}

@Test func moderationAddsRuleBasedClaimsAndRaisesTheVerdict() throws {
    let task = try AnalysisTask.builtIn(.moderation)
    let output: JSONValue = ["image_text": ["国家级认证", "效果第一"], "observations": "海报", "categories": [], "verdict": "allow"]
    let result = try task.result(fromModelOutput: output.sortedText,
                                 context: PostContext(record: PostRecord(id: "1", text: "100%有效"), referenceYear: 2026))
    #expect(result["verdict"] == "review")
    let categories = result["categories"]?.arrayValue ?? []
    #expect(categories.count == 2)
    #expect(categories[0] == ["category": "absolute_claim", "evidence": "国家级、第一", "source": "rule"])
    #expect(categories[1]["evidence"] == "100%")
    // The model's own claims are kept as they are; duplicates dropped.
    let named: JSONValue = ["image_text": ["最好"], "observations": "", "verdict": "block",
                       "categories": [["category": "absolute_claim", "evidence": "最好", "source": "image_text"],
                                      ["category": "absolute_claim", "evidence": "最好", "source": "image_text"]]]
    let kept = try task.result(fromModelOutput: named.sortedText, context: PostContext(record: PostRecord(id: "1"), referenceYear: 2026))
    #expect(kept["categories"]?.arrayValue?.count == 1)
    #expect(kept["verdict"] == "block")
}

@Test func ocrAndDescribeCleanUp() throws {
    let ocr = try AnalysisTask.builtIn(.ocr).result(fromModelOutput: #"{"lines": [" a ", "", "b\nc"]}"#,
                                                  context: PostContext(record: PostRecord(id: "1"), referenceYear: 2026))
    #expect(ocr == ["lines": ["a", "b", "c"], "text": "a\nb\nc"])
    let describe = try AnalysisTask.builtIn(.describe).result(
        fromModelOutput: #"{"summary": " s ", "setting": "x", "people": [], "objects": ["cup", "Cup"], "brands": ["Nike", "nike", " "], "text": []}"#,
        context: PostContext(record: PostRecord(id: "1"), referenceYear: 2026))
    #expect(describe["brands"] == ["Nike"])
    #expect(describe["objects"] == ["cup"])
    #expect(describe["summary"] == "s")
}

@Test func customTaskUsesTheUsersSchema() throws {
    let schema: JSONValue = ["type": "object", "required": ["is_food", "dish"],
                        "properties": ["is_food": ["type": "boolean"], "dish": ["type": ["string", "null"]]]]
    let task = try AnalysisTask.custom(instruction: "这张图是食物吗？是什么菜？", schema: schema)
    #expect(TaskExamples.modelOutput(for: task) == ["is_food": false, "dish": nil])
    let result = try task.result(fromModelOutput: #"{"is_food": true, "dish": "宫保鸡丁"}"#,
                                 context: PostContext(record: PostRecord(id: "1"), referenceYear: 2026))
    #expect(result == ["is_food": true, "dish": "宫保鸡丁"])
    #expect(throws: TaskError.self) { try AnalysisTask.custom(instruction: " ", schema: schema) }
    #expect(throws: TaskError.self) { try AnalysisTask.custom(instruction: "x", schema: ["type": "array"]) }
    #expect(task.renderedPrompt(for: PostRecord(id: "1"), language: .en, hasImage: true).contains(schema.sortedText))
}

@Test func generationParametersAreGreedyWithTheBudget() throws {
    var options = RunOptions()
    options.maxTokens = 77
    let runner = TaskRunner(task: try AnalysisTask.builtIn(.ocr), analyzer: FakeEngine.analyzer(), options: options)
    let p = runner.generationParameters()
    #expect(p.maxTokens == 77)
    #expect(p.sampling.isGreedy)
}

@Test func referenceYearComesFromTheMeta() {
    #expect(PostContext.referenceYear(for: PostRecord(id: "1", meta: ["date": "2027-01-02"]), fallback: 2000) == 2027)
    #expect(PostContext.referenceYear(for: PostRecord(id: "1"), fallback: 2000) == 2000)
}
