import Foundation
import JSON

/// A task with its run options, read from a request's `task` and `options` (the body of `POST /v1/analyze`, the query
/// string or the records of `POST /v1/batches`). The option rules are `JobSpec.parse`'s; what the server adds is only
/// its own budgets (`defaults`) and how a refusal is named in its answer (`OptionError.named(prefix:)`).
public struct TaskSpec: Sendable {
    public var task: AnalysisTask
    public var options: RunOptions
    /// The stored form (what a batch job keeps).
    public var spec: JobSpec

    /// The options an HTTP client may send: the pixel budget is the server's (`--max-image-tokens`), not the client's.
    public static let clientOptionKeys: Set<String> = ["language", "max_tokens", "dense", "instruction", "schema"]

    /// `fromQuery`: values arrive as strings (`max_tokens=64`, `dense=true`, `schema={...}`).
    public static func parse(task: JSONValue?, options: JSONObject, fromQuery: Bool, defaults: RunOptions) throws -> TaskSpec {
        let spec = try JobSpec.parse(task: task, options: options, defaults: defaults, allowed: clientOptionKeys, fromQuery: fromQuery)
        return TaskSpec(task: try spec.makeTask(), options: spec.runOptions(), spec: spec)
    }
}

extension JobSpec.OptionError {
    /// The refused field as a client names it (`options.max_tokens` in a body, `max_tokens` in a query) and a message
    /// that names it: `'options.max_tokens' must be an integer, at least 1`, or `missing required field 'task' (…)`.
    public func named(prefix: String) -> (param: String, message: String) {
        let param = key == "task" ? "task" : prefix + key
        let message = key == "task" && rule.hasPrefix("is required (")
            ? "missing required field 'task' (\(rule.dropFirst("is required (".count).dropLast()))"
            : "'\(param)' \(rule)"
        return (param, message)
    }
}
