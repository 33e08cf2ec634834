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
                var lastPlain = Date.distantPast
                while !info.state.isFinal {
                    if live {
                        writeOut("\r\u{1B}[2K" + JobReport.line(info, bar: true))
                    } else if Date().timeIntervalSince(lastPlain) >= 10 {
                        printError(JobReport.line(info, bar: false))
                        lastPlain = Date()
                    }
                    try await Task.sleep(for: .milliseconds(Int64(max(0.1, interval) * 1000)))
                    // A database restarting under a live view is waited out, not fatal.
                    do {
                        info = try await queue.job(id: job)
                    } catch StoreError.unavailable(let reason) {
                        if live { writeOut("\r\u{1B}[2K" + "database unreachable, retrying: \(reason)") } else { printError("retrying: \(reason)") }
                        try await Task.sleep(for: .seconds(1))
                    }
                }
                if live { writeOut("\r\u{1B}[2K") }
            }
            if json {
                writeOut(JobReport.json(info).sortedText + "\n")
            } else {
                writeOut(JobReport.details(info).joined(separator: "\n") + "\n")
            }
            if wait && info.state != .completed { throw ExitCode.failure }
        }
    }
}
