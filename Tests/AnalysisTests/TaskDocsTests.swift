import Foundation
import JSON
import Testing
import TestSupport
@testable import Analysis

/// docs/tasks.md shows each built-in task as it is: the version in its heading, its answer schema (bounds included),
/// and the worst case of tokens the default `--max-tokens` is. `UPDATE_DOCS=1 swift test --filter TaskDocsTests`
/// rewrites those parts from the code.
@Suite(.serialized) struct TaskDocsTests {
    static let url = Paths.root.appendingPathComponent("docs/tasks.md")
    static let writer = JSONWriter(sortedKeys: true, indent: "  ")

    /// The section of `kind`: from its heading to the next `## `.
    static func section(_ kind: TaskKind, in text: String) -> Range<String.Index>? {
        guard let start = text.range(of: "\n## `\(kind.rawValue)` (version ") else { return nil }
        let end = text.range(of: "\n## ", range: start.upperBound..<text.endIndex)?.lowerBound ?? text.endIndex
        return start.lowerBound..<end
    }

    /// The section as the code says it: the heading's version, the first json block after "Answer schema:", the budget line.
    static func updated(_ section: String, task: AnalysisTask) -> String {
        var s = section.replacing(#/## `(\w+)` \(version \d+\)/#) { "## `\($0.1)` (version \(task.version))" }
        if let marker = s.range(of: "Answer schema"),
           let open = s.range(of: "```json\n", range: marker.upperBound..<s.endIndex),
           let close = s.range(of: "\n```", range: open.upperBound..<s.endIndex) {
            s.replaceSubrange(open.upperBound..<close.lowerBound, with: writer.string(task.schema))
        }
        let budget = "Worst case: \(task.worstCaseTokens!) tokens (the default `--max-tokens`; a smaller budget is refused)."
        if let line = s.firstMatch(of: #/Worst case: \d+ tokens[^\n]*/#) {
            s.replaceSubrange(line.range, with: budget)
        } else if let marker = s.range(of: "Answer schema") {
            s.insert(contentsOf: budget + "\n\n", at: marker.lowerBound)
        }
        return s
    }

    @Test func theDocsShowEachTaskAsTheCodeDefinesIt() throws {
        var text = try String(contentsOf: Self.url, encoding: .utf8)
        let original = text
        for kind in TaskKind.allCases where kind != .custom {
            let task = try AnalysisTask.builtIn(kind)
            let range = try #require(Self.section(kind, in: text), "docs/tasks.md has no section for \(kind)")
            text.replaceSubrange(range, with: Self.updated(String(text[range]), task: task))
        }
        if ProcessInfo.processInfo.environment["UPDATE_DOCS"] == "1" {
            try text.write(to: Self.url, atomically: true, encoding: .utf8)
            return
        }
        #expect(text == original, "docs/tasks.md differs from the tasks' code; run UPDATE_DOCS=1 swift test --filter TaskDocsTests")
    }
}
