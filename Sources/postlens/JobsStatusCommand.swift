import Analysis
import ArgumentParser
import Foundation
import JSON
import Store

/// `postlens jobs status JOB`: state, counts, items/s and ETA. On a terminal the line is a live bar redrawn until the
/// job finishes (Ctrl-C leaves it running); `--json` prints one object with a `state` field.
struct JobsStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "A job's state (queued, running, completed, cancelled, failed), counts, items/s and ETA.",
        discussion: "On a terminal: a live progress bar until the job ends. --wait: return when it ends (exit status 0 only if completed)."
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "The job id.")
    var job: String

    @Flag(help: "One JSON object: id, state, task, total, done, succeeded, failed, running, queued, items_per_second, eta_seconds, times.")
    var json = false

    @Flag(help: "Wait until the job is completed, cancelled or failed (progress on stderr); exit status 1 unless completed.")
    var wait = false

    @Flag(help: "Print once, even on a terminal.")
    var once = false

    @Option(name: .customLong("interval"), help: "Seconds between refreshes (live bar, --wait).")
    var interval = 1.0

    func run() async throws {
        let live = !json && !once && isatty(STDOUT_FILENO) != 0
        try await withJobQueue(database) { queue in
            var info = try await queue.job(id: job)
            if live || wait {
                // Live: redrawn in place on stdout; --wait without a terminal: a plain line on stderr every 10 s.
                let progress = live ? ProgressLine(isTerminal: true, write: { writeOut($0) })
                                    : ProgressLine(isTerminal: false, plainInterval: .seconds(10), write: { printError($0, newline: false) })
                while !info.state.isFinal {
                    progress.show(JobLines.line(info, bar: live))
                    try await Task.sleep(for: .milliseconds(Int64(max(0.1, interval) * 1000)))
                    // A database restarting under a live view is waited out, not fatal.
                    do {
                        info = try await queue.job(id: job)
                    } catch StoreError.unavailable(let reason) {
                        progress.show("database unreachable, retrying: \(reason)", force: true)
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                progress.finish()
            }
            if json {
                writeOut(JobReport.json(info).sortedText + "\n")
            } else {
                writeOut(JobLines.details(info).joined(separator: "\n") + "\n")
            }
            if wait && info.state != .completed { throw ExitCode.failure }
        }
    }
}
