import Analysis
import ArgumentParser
import Foundation
import JSON
import Store

/// `postlens jobs …`: batch jobs kept in a database, run by `postlens worker`s on any number of machines
/// (docs/scaling.md).
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Submit, watch, collect and cancel batch jobs kept in a database (run by `postlens worker`).",
        discussion: "Every subcommand takes --database postgres://USER:PASSWORD@HOST:PORT/DATABASE (or $POSTLENS_DATABASE_URL). See docs/scaling.md.",
        subcommands: [JobsSubmitCommand.self, JobsStatusCommand.self, JobsResultsCommand.self, JobsListCommand.self, JobsCancelCommand.self]
    )
}

/// Runs a jobs subcommand against its database: errors become one `error: …` line and exit status 1.
func withJobQueue<T>(_ options: DatabaseOptions, _ body: (any JobQueue) async throws -> T) async throws -> T {
    let opened: OpenedDatabase
    do {
        opened = try await OpenedDatabase.open(try options.requiredURL(), maximumConnections: 2, wait: .seconds(10),
                                               logger: commandLogger("postlens.jobs"))
    } catch {
        printError("\(error)".hasPrefix("error:") ? "\(error)" : "error: \(error)")
        throw ExitCode.failure
    }
    defer { opened.close() }
    do {
        return try await body(opened.jobs)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

/// `postlens jobs list`.
struct JobsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The newest jobs with their state and progress.")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "How many jobs.")
    var limit = 20

    @Flag(help: "One JSON object per line instead of a table.")
    var json = false

    func run() async throws {
        try await withJobQueue(database) { queue in
            let jobs = try await queue.jobs(limit: limit)
            if json {
                for job in jobs { writeOut(JobReport.json(job).sortedText + "\n") }
                return
            }
            if jobs.isEmpty {
                printError("no jobs yet; submit one with: postlens jobs submit --task T --input posts.jsonl")
                return
            }
            writeOut(JobReport.tableHeader + "\n")
            for job in jobs { writeOut(JobReport.tableRow(job) + "\n") }
        }
    }
}

/// `postlens jobs cancel JOB`.
struct JobsCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job: no further item starts; items already running finish and are recorded.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "The job id.")
    var job: String

    func run() async throws {
        try await withJobQueue(database) { queue in
            let info = try await queue.cancelJob(id: job)
            writeOut("\(info.id) \(info.state.rawValue) (\(info.done)/\(info.total) items done)\n")
        }
    }
}
