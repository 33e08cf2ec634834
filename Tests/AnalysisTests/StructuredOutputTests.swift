import Engine
import Foundation
import Testing
@testable import Analysis
import TestSupport

/// Every built-in task's schema compiles for the constrained decoder, keeps the look → extract →
/// reason key order, and the task's generation parameters carry it.
@Test(arguments: TaskKind.allCases.filter { $0 != .custom })
func taskSchemasCompileForConstrainedDecoding(_ kind: TaskKind) throws {
    let task = try AnalysisTask.builtIn(kind)
    let schema = try JSONSchema.parse(task.schema.orderedSchemaValue)
    _ = schema
    let runner = TaskRunner(task: task, analyzer: FakeEngine.analyzer(), options: .init())
    guard case .jsonSchema(let name, _, let strict)? = runner.generationParameters().responseFormat else {
        Issue.record("no response format for \(kind)")
        return
    }
    #expect(name == task.versionTag)
    #expect(strict)
    if case .object(let members) = task.schema.orderedSchemaValue,
       case .object(let properties)? = members.first(where: { $0.0 == "properties" })?.1,
       let required = task.schema["required"]?.arrayValue?.compactMap(\.stringValue) {
        #expect(properties.map(\.0).prefix(required.count) == required[...])
    }
}
