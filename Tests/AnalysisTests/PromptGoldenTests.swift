@testable import Analysis
import Foundation
import Testing

/// Rendered prompts are compared with files under Golden/. After an intended prompt change, bump the
/// task's version and regenerate with `UPDATE_GOLDEN=1 swift test --filter PromptGolden`.
struct GoldenCase: Sendable, CustomStringConvertible {
    let kind: TaskKind, language: PromptLanguage, hasImage: Bool
    var description: String { "\(kind.rawValue)_\(language.rawValue)\(hasImage ? "" : "_noimage")" }
}

let goldenCases: [GoldenCase] = TaskKind.allCases.flatMap { kind in
    PromptLanguage.allCases.map { GoldenCase(kind: kind, language: $0, hasImage: true) }
} + [GoldenCase(kind: .sentiment, language: .zh, hasImage: false), GoldenCase(kind: .moderation, language: .en, hasImage: false)]

func goldenTask(_ kind: TaskKind) throws -> AnalysisTask {
    kind == .custom
        ? try AnalysisTask.custom(instruction: "判断图片是否是食物，并给出菜名。",
                                  schema: ["type": "object", "required": ["is_food"], "properties": ["is_food": ["type": "boolean"], "dish": ["type": "string"]]])
        : try AnalysisTask.builtIn(kind)
}

@Test(arguments: goldenCases) func renderedPromptsMatchTheGoldenFiles(_ c: GoldenCase) throws {
    let task = try goldenTask(c.kind)
    let record = PostRecord(id: "g1", image: "post.jpg", text: c.language == .zh ? "双11到手价999，全网最低！" : "Got it for $99, best deal ever!")
    let rendered = "# \(task.versionTag)\n" + task.renderedPrompt(for: record, language: c.language, hasImage: c.hasImage)
    let file = Paths.golden.appendingPathComponent("\(c).txt")
    if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
        try FileManager.default.createDirectory(at: Paths.golden, withIntermediateDirectories: true)
        try rendered.write(to: file, atomically: true, encoding: .utf8)
        return
    }
    let expected = try String(contentsOf: file, encoding: .utf8)
    #expect(rendered == expected, "prompt for \(c) changed: bump the task version and regenerate the golden file")
}

@Test func tilePromptsSayWhichTile() throws {
    let task = try AnalysisTask.builtIn(.ocr)
    let messages = task.messages(for: PostRecord(id: "1", image: "x"), language: .zh, hasImage: true, tile: (2, 5))
    guard case .text(let text)? = messages.last?.content.last else { Issue.record("no text"); return }
    #expect(text.contains("第 3/5 块"))
}
