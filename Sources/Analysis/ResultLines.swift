import Foundation
import JSON

/// The output line of one item, the same whoever ran it (`postlens analyze`, a `postlens worker`, the server):
/// `{id, task, task_version, status, result, error, raw?, meta?, usage, seconds}` (docs/tasks.md).
public enum ResultLines {
    static func base(id: String, task: AnalysisTask) -> JSONObject {
        ["id": .string(id), "task": .string(task.name), "task_version": JSONValue(task.version)]
    }

    /// A record the model ran on: its result, or its recorded error with the model's text as `raw`.
    public static func outcome(_ outcome: ItemOutcome, record: PostRecord, task: AnalysisTask) -> JSONValue {
        var o = base(id: record.id, task: task)
        o["status"] = outcome.ok ? "ok" : "error"
        o["result"] = outcome.result ?? .null
        o["error"] = .optional(outcome.error)
        if let raw = outcome.raw, !outcome.ok { o["raw"] = .string(raw) }
        if let meta = record.meta { o["meta"] = meta }
        o["usage"] = [
            "prompt_tokens": JSONValue(outcome.usage.promptTokens),
            "completion_tokens": JSONValue(outcome.usage.completionTokens),
            "image_tokens": JSONValue(outcome.usage.imageTokens),
        ]
        o["seconds"] = JSONValue((outcome.seconds * 1000).rounded() / 1000)
        return .object(o)
    }

    /// A record that never reached the model (unreadable, refused, or given up after its attempts).
    public static func error(id: String, error: String, task: AnalysisTask) -> JSONValue {
        var o = base(id: id, task: task)
        o["status"] = "error"
        o["result"] = .null
        o["error"] = .string(error)
        return .object(o)
    }
}
