import Analysis
import ArgumentParser
import Foundation
import JSON
import Store

/// `postlens jobs results JOB --output out.jsonl|out.csv`: every input record exactly once, in input order, as its
/// task result or its recorded error (the lines `postlens analyze` writes).
struct JobsResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "Write a job's results (each input record once: its result or its recorded error) as JSON lines or CSV.",
        discussion: "A job still running is refused unless --partial (or --wait). Jobs submitted as OpenAI batch JSONL are written in OpenAI's batch output shape (--format native for postlens lines)."
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "The job id.")
    var job: String

    @Option(help: "results.jsonl or results.csv (default: JSON lines on stdout).")
    var output: String?

    @Option(help: "jsonl, csv or openai (default: from --output's extension; openai for jobs submitted in that format).")
    var format: String?

    @Flag(help: "Write the results finished so far of a job that is still running.")
    var partial = false

    @Flag(help: "Wait until the job has finished, then write.")
    var wait = false

    func validate() throws {
        if let format, !["jsonl", "csv", "openai", "native"].contains(format) { throw ValidationError("--format must be jsonl, csv or openai") }
        if let output, !["jsonl", "json", "ndjson", "csv"].contains(URL(fileURLWithPath: output).pathExtension.lowercased()) {
            throw ValidationError("--output must end in .jsonl or .csv")
        }
    }

    func run() async throws {
        try await withJobQueue(database) { queue in
            var info = try await queue.job(id: job)
            while wait && !info.state.isFinal {
                try await Task.sleep(for: .seconds(1))
                info = try await queue.job(id: job)
            }
            if !info.state.isFinal && !partial {
                throw CLIError("job \(info.id) is \(info.state.rawValue) (\(info.done)/\(info.total) items done); wait for it "
                    + "(postlens jobs status --wait \(info.id)) or pass --partial for the results so far")
            }
            let results = try await queue.allResults(jobID: info.id)
            let spec = try? JobSpec(json: JSONValue.parse(info.spec))
            let chosen = format ?? (output.map { URL(fileURLWithPath: $0).pathExtension.lowercased() == "csv" ? "csv" : "jsonl" } ?? "jsonl")
            let openAI = chosen == "openai" || (chosen == "jsonl" && format == nil && spec?.openAIFormat == true)
            var text = ""
            if chosen == "csv" {
                text = ResultCSV.render(results.compactMap { try? JSONValue.parse($0.line) }, task: spec?.task ?? .custom)
            } else {
                for result in results {
                    if openAI, let line = try? JSONValue.parse(result.line) {
                        text += OpenAIBatchOutput.line(line, jobID: info.id, seq: result.seq).sortedText + "\n"
                    } else {
                        text += result.line + "\n"
                    }
                }
            }
            if let output {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            } else {
                writeOut(text)
            }
            let missing = info.total - results.count
            var note = "\(info.id): \(results.count) of \(info.total) records (\(info.failed) recorded errors)"
            if missing > 0 { note += "; \(missing) without a result (job \(info.state.rawValue))" }
            printError(note + (output.map { " → \($0)" } ?? ""))
        }
    }
}
