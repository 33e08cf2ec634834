import Foundation
import JSON
import Store

/// A job as people and programs read it: the JSON of `jobs status --json`, `jobs list --json` and `GET /v1/batches/{id}`,
/// and the lines of `jobs status` and `jobs list`.
public enum JobReport {
    /// `{id, state, task, total, done, succeeded, failed, running, queued, items_per_second, eta_seconds, created_at, …}`;
    /// times are seconds since 1970.
    public static func json(_ job: JobInfo) -> JSONValue {
        func seconds(_ date: Date?) -> JSONValue { .optional(date.map { $0.timeIntervalSince1970.rounded(.down) }) }
        var o: JSONObject = [
            "id": .string(job.id), "state": .string(job.state.rawValue), "task": .string(job.task), "source": .string(job.source),
            "total": JSONValue(job.total), "done": JSONValue(job.done), "succeeded": JSONValue(job.succeeded),
            "failed": JSONValue(job.failed), "running": JSONValue(job.running), "queued": JSONValue(job.queued),
            "items_per_second": .optional(job.itemsPerSecond.map { ($0 * 1000).rounded() / 1000 }),
            "eta_seconds": .optional(job.etaSeconds.map { $0.rounded() }),
            "created_at": seconds(job.createdAt), "started_at": seconds(job.startedAt), "finished_at": seconds(job.finishedAt),
        ]
        if let error = job.error { o["error"] = .string(error) }
        if let summary = job.summary, let value = try? JSONValue.parse(summary) { o["summary"] = value }
        return .object(o)
    }

    /// `job_3f…  sentiment@1  running  [#####-----] 120/200 items, 5 failed, 0.85 items/s, ETA 1m34s`.
    public static func line(_ job: JobInfo, bar: Bool) -> String {
        "\(job.id)  \(job.task)  \(job.state.rawValue)  "
            + TerminalBatchProgress.render(done: job.done, failed: job.failed, total: job.total, itemsPerSecond: job.itemsPerSecond,
                                           etaSeconds: job.etaSeconds, bar: bar)
    }

    /// The longer form of `jobs status`.
    public static func details(_ job: JobInfo) -> [String] {
        var lines = ["\(job.id)  \(job.task)  \(job.state.rawValue)"]
        lines.append("  \(job.total) items: \(job.done) done (\(job.succeeded) ok, \(job.failed) failed), \(job.running) running, \(job.queued) waiting")
        if let rate = job.itemsPerSecond {
            var speed = String(format: "  %.2f items/s over the last minute", rate)
            if let eta = job.etaSeconds { speed += ", ETA " + TerminalBatchProgress.formatDuration(eta) }
            lines.append(speed)
        }
        var times = "  created \(formatISODate(job.createdAt))"
        if let started = job.startedAt { times += ", started \(formatISODate(started))" }
        if let finished = job.finishedAt { times += ", finished \(formatISODate(finished))" }
        lines.append(times)
        lines.append("  from \(job.source)")
        if let error = job.error { lines.append("  error: \(error)") }
        return lines
    }

    public static let tableHeader = "ID                            TASK           STATE       DONE/TOTAL  FAILED  CREATED"

    public static func tableRow(_ job: JobInfo) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        return pad(job.id, 30) + pad(job.task, 15) + pad(job.state.rawValue, 12) + pad("\(job.done)/\(job.total)", 12)
            + pad("\(job.failed)", 8) + formatISODate(job.createdAt)
    }

    /// Counts, verdicts and polarities over a finished job's results.
    public static func summary(_ job: JobInfo, results: [JobResult]) -> BatchSummary {
        BatchSummary(task: job.task, lines: results.map { ($0.itemID, $0.ok, $0.line) })
    }
}
