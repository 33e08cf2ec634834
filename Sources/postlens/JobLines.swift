import Analysis
import Foundation
import Store

/// A job as people read it on the command line: the progress line of `jobs status`, its longer form, and the table
/// of `jobs list`. (Programs read `JobReport.json`.)
enum JobLines {
    /// `job_3f…  sentiment@1  running  [#####-----] 120/200 items, 5 failed, 0.85 items/s, ETA 1:34`.
    static func line(_ job: JobInfo, bar: Bool) -> String {
        "\(job.id)  \(job.task)  \(job.state.rawValue)  "
            + TerminalBatchProgress.render(done: job.done, failed: job.failed, total: job.total, itemsPerSecond: job.itemsPerSecond,
                                           etaSeconds: job.etaSeconds, bar: bar)
    }

    /// The longer form of `jobs status`.
    static func details(_ job: JobInfo) -> [String] {
        var lines = ["\(job.id)  \(job.task)  \(job.state.rawValue)"]
        lines.append("  \(job.total) items: \(job.done) done (\(job.succeeded) ok, \(job.failed) failed), \(job.running) running, \(job.queued) waiting")
        if let rate = job.itemsPerSecond {
            var speed = String(format: "  %.2f items/s over the last minute", rate)
            if let eta = job.etaSeconds { speed += ", ETA " + ProgressLine.duration(eta) }
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

    static let tableHeader = "ID                            TASK           STATE       DONE/TOTAL  FAILED  CREATED"

    static func tableRow(_ job: JobInfo) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        return pad(job.id, 30) + pad(job.task, 15) + pad(job.state.rawValue, 12) + pad("\(job.done)/\(job.total)", 12)
            + pad("\(job.failed)", 8) + formatISODate(job.createdAt)
    }
}
