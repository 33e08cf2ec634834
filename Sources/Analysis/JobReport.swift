import Foundation
import JSON
import Store

/// A job as programs read it: the JSON of `jobs status --json`, `jobs list --json` and `GET /v1/batches/{id}`, and the
/// summary of its results. (The lines people read are the command line's: `JobLines`.)
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

    /// Counts, verdicts and polarities over a finished job's results.
    public static func summary(_ job: JobInfo, results: [JobResult]) -> BatchSummary {
        BatchSummary(task: job.task, lines: results.map { ($0.itemID, $0.ok, $0.line) })
    }
}
