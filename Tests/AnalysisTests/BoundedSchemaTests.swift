import Engine
import Foundation
import JSON
import Qwen3VL
import Testing
@testable import Analysis

/// Every task's answer is bounded (each string a `maxLength`, each array a `maxItems`), so the most tokens it can take
/// is known (`AnalysisTask.worstCaseTokens`) and requests are checked against it.
@Suite struct BoundedSchemaTests {
    static let tasks: [AnalysisTask] = TaskKind.allCases.filter { $0 != .custom }.map { try! AnalysisTask.builtIn($0) }

    @Test(arguments: tasks.map(\.kind))
    func everyStringAndArrayIsBoundedAndTheWorstCaseIsModest(_ kind: TaskKind) throws {
        let task = try AnalysisTask.builtIn(kind)
        #expect(unbounded(task.schema).isEmpty, "\(task.versionTag): \(unbounded(task.schema))")  // DetectTaskTests' walk
        let worst = try #require(task.worstCaseTokens, "\(task.versionTag) has no worst case")
        print("[budget] \(task.versionTag): worst case \(worst) tokens")
        // Bounded for a post, not for a book: a few thousand tokens at most (moderation@3 allowed ≈ 20,000).
        #expect(worst <= 3_000, "\(task.versionTag): \(worst)")
        #expect(task.defaultMaxTokens == worst)
    }

    @Test func aBudgetBelowTheWorstCaseIsRefusedWherever_max_tokens_isGiven() throws {
        let task = try AnalysisTask.builtIn(.sentiment)
        let worst = try #require(task.worstCaseTokens)
        #expect(try task.maxTokens(requested: nil) == worst)
        #expect(try task.maxTokens(requested: worst) == worst)
        #expect(try task.maxTokens(requested: 4 * worst) == 4 * worst)
        #expect(throws: TaskError.self) { try task.maxTokens(requested: worst - 1) }
        // Jobs and HTTP requests: the same rule, naming the option.
        #expect(throws: JobSpec.OptionError(key: "max_tokens", rule: AnalysisTask.budgetRule(worst: worst, task: task.versionTag))) {
            try JobSpec.parse(task: "sentiment", options: ["max_tokens": JSONValue(worst - 1)])
        }
        #expect(try JobSpec.parse(task: "sentiment", options: [:]).maxTokens == worst)
        // A custom schema without bounds has no worst case: any budget, 1,024 by default.
        let custom = try AnalysisTask.custom(instruction: "x", schema: ["type": "object", "properties": ["a": ["type": "string"]], "required": ["a"]])
        #expect(custom.worstCaseTokens == nil && custom.defaultMaxTokens == 1024)
        #expect(try custom.maxTokens(requested: 5) == 5)
    }

    /// A thinking model's reasoning gets what max_tokens leaves beyond the answer's worst case, never more.
    @Test func reasoningNeverEatsTheAnswersBudget() throws {
        let task = try AnalysisTask.builtIn(.promo)
        let worst = try #require(task.worstCaseTokens)
        var options = RunOptions()
        options.maxTokens = worst + 500
        #expect(TaskRunner(task: task, analyzer: NoModel(), options: options).generationParameters().thinking.maxReasoningTokens
            == 500 - TaskRunner.thinkBlockClosing)
        options.maxReasoningTokens = 10_000
        #expect(TaskRunner(task: task, analyzer: NoModel(), options: options).generationParameters().thinking.maxReasoningTokens
            == 500 - TaskRunner.thinkBlockClosing)
        options.maxTokens = worst
        #expect(TaskRunner(task: task, analyzer: NoModel(), options: options).generationParameters().thinking.maxReasoningTokens == 0)
    }

    struct NoModel: PostAnalyzer {
        func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse { throw CancellationError() }
    }
}

/// A random-weight model (the tiny fixture, greedy, through the product's analyzer) gives a schema-valid answer for
/// every good record of every task: the bounds close whatever it writes, within the default budget.
@Suite(.serialized) struct RandomModelAnswersTests {
    static let engine = Result { try InferenceEngine(directory: Paths.tinyModel, format: .f32) }

    static func records(_ dir: URL) throws -> [PostRecord] {
        try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("small.png"))
        try FileManager.default.copyItem(at: Paths.fixtures.appendingPathComponent("images/odd_333x217.jpg"),
                                         to: dir.appendingPathComponent("odd.jpg"))
        return [
            PostRecord(id: "text", text: "双11到手价¥999，原价¥1299，限时抢购！加微信 abc123"),
            PostRecord(id: "image+text", image: "small.png", text: "物流很快，杯子很好看"),
            PostRecord(id: "image", image: "odd.jpg"),
        ] + (0..<5).map { PostRecord(id: "comment-\($0)", image: "small.png", text: "第\($0)条评论：物流很快，包装完好") }
    }

    /// The control: the same records under sentiment's version-1 schema (no bounds) run to `max_tokens` at least once
    /// — the random model does loop — so the test above would fail without the bounds.
    @Test(.timeLimit(.minutes(10))) func withoutBoundsTheRandomModelRunsToMaxTokens() async throws {
        let dir = try Paths.temporaryDirectory("random-unbounded")
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try Self.engine.get()
        let string: JSONValue = ["type": "string"], strings: JSONValue = ["type": "array", "items": string]
        let unbounded: JSONValue = [
            "type": "object", "required": ["image_text", "observations", "aspects", "evidence", "polarity"],
            "properties": [
                "image_text": strings, "observations": string,
                "aspects": ["type": "array", "items": ["type": "object", "required": ["aspect", "evidence"],
                                                      "properties": ["aspect": TaskSchemas.enumeration(TaskSchemas.aspects), "evidence": string]]],
                "evidence": strings, "polarity": TaskSchemas.polarity,
            ],
        ]
        let task = try AnalysisTask.custom(instruction: "The post's sentiment.", schema: unbounded)
        #expect(task.worstCaseTokens == nil)
        var options = RunOptions()
        options.baseDirectory = dir
        options.maxTokens = try AnalysisTask.builtIn(.sentiment).defaultMaxTokens
        options.maxPixels = 64 * 1024
        let runner = TaskRunner(task: task, analyzer: EngineAnalyzer(engine: engine), options: options, baseParameters: engine.defaultParameters)
        var cut = 0
        for record in try Self.records(dir) where (await runner.run(record)).calls.last?.finishReason == .length { cut += 1 }
        #expect(cut > 0, "every answer closed without bounds: the bounded test proves nothing with these records")
    }

    @Test(.timeLimit(.minutes(10)), arguments: TaskKind.allCases.filter { $0 != .custom })
    func everyGoodRecordGetsASchemaValidAnswer(_ kind: TaskKind) async throws {
        let dir = try Paths.temporaryDirectory("random-\(kind.rawValue)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try Self.engine.get()
        let task = try AnalysisTask.builtIn(kind)
        var options = RunOptions()
        options.baseDirectory = dir
        options.maxTokens = task.defaultMaxTokens
        options.maxPixels = 64 * 1024
        let runner = TaskRunner(task: task, analyzer: EngineAnalyzer(engine: engine), options: options,
                                baseParameters: engine.defaultParameters)
        for record in try Self.records(dir) where kind != .detect || record.image != nil {
            let outcome = await runner.run(record)
            #expect(outcome.ok, "\(task.versionTag) \(record.id): \(outcome.error ?? "") — \(outcome.raw?.prefix(300) ?? "")")
            let call = try #require(outcome.calls.last)
            #expect(call.finishReason == .stop, "\(task.versionTag) \(record.id): the answer was cut")
            #expect(call.usage.completionTokens <= task.defaultMaxTokens)
            // The answer as the model wrote it is valid against the schema (before any post-processing).
            let answer = try JSONValue.parse(call.text)
            #expect(SchemaValidator.validate(answer, against: task.schema).isEmpty, "\(task.versionTag) \(record.id): \(call.text.prefix(300))")
            print("[random] \(task.versionTag) \(record.id): \(call.usage.completionTokens) tokens")
        }
    }
}
