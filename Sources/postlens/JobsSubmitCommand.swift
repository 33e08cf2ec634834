import Analysis
import ArgumentParser
import Foundation
import JSON
import Store

/// `postlens jobs submit`: stores a job and its items; workers anywhere then run it. Prints the job id as its last line.
struct JobsSubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Store a batch job (a task over posts) in the database for workers to run; prints the job id last.",
        discussion: """
        Input: JSON lines ({"id", "image", "text", "meta"}), OpenAI batch JSONL ({"custom_id", "method": "POST", \
        "url": "/v1/analyze", "body": {task, text, images, options}}), CSV with a header row, or a folder of images. \
        Local images are copied into the database (any worker on any machine can read them) unless --images reference; \
        http(s) URLs are fetched by the workers. As with `postlens analyze`, image paths must stay inside the input's folder \
        and URLs must name public hosts unless --trust-input. Bad records are recorded as their item's error at once. \
        A job holds at most --max-records records from an input of at most --max-input-mb.
        """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "The task: \(TaskKind.allCases.map(\.rawValue).joined(separator: ", ")) (OpenAI batch input may name it in each body instead).")
    var task: String?

    @Option(help: "posts.jsonl, posts.csv, OpenAI batch .jsonl, or a folder of images.")
    var input: String

    @Option(help: #"Task options as JSON: {"language": "zh"|"en", "max_tokens": N, "max_pixels": N, "dense": "auto"|true|false, "instruction": "…", "schema": {…}}."#)
    var options: String?

    @Option(help: "copy: store local images in the database (default); reference: keep their absolute paths (for folders every worker mounts).")
    var images: JobSubmission.ImageMode = .copy

    @Option(name: .customLong("max-attempts"), help: "Tries per item (a transient failure or a worker dying mid-item) before its error is recorded.")
    var maxAttempts = 3

    @OptionGroup var columns: InputColumnOptions

    @OptionGroup var trust: InputTrustOptions

    @Option(name: .customLong("max-records"), help: "Most records one job may hold; a larger input is refused before anything is stored.")
    var maxRecords = BatchInput.Limits.submission.maxRecords

    @Option(name: .customLong("max-input-mb"), help: "Largest input file, in MiB (a folder's images are bounded one by one).")
    var maxInputMB = BatchInput.Limits.submission.maxBytes >> 20

    func validate() throws {
        guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts must be 1...100") }
        guard maxRecords >= 1 else { throw ValidationError("--max-records must be at least 1") }
        guard (1...(1 << 20)).contains(maxInputMB) else { throw ValidationError("--max-input-mb must be 1...1048576") }
    }

    func run() async throws {
        let inputURL = URL(fileURLWithPath: (input as NSString).expandingTildeInPath).standardizedFileURL
        let batch: BatchInput
        let spec: JobSpec
        do {
            batch = try BatchInput.read(inputURL, columns: .init(id: columns.idColumn, text: columns.textColumn, image: columns.imageColumn), task: task,
                                        limits: BatchInput.Limits(maxRecords: maxRecords, maxBytes: maxInputMB << 20))
            guard !batch.items.isEmpty else { throw CLIError("\(inputURL.path) has no records") }
            var optionValues = batch.options ?? [:]
            if let options {
                guard case .object(let given) = try JSONValue.parse(options) else { throw CLIError("--options must be a JSON object") }
                optionValues = given
            }
            guard let name = task ?? batch.task else {
                throw CLIError("--task is required: one of \(TaskKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            do {
                spec = try JobSpec.parse(task: .string(name), options: optionValues)
            } catch let error as JobSpec.OptionError {
                throw CLIError(error.key == "task" ? "--task \(error.rule)" : "--options: \(error)")
            }
        } catch let error as CLIError {
            printError("error: \(error)")
            throw ExitCode.failure
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: inputURL.path, isDirectory: &isDirectory)
        let base = isDirectory.boolValue ? inputURL : inputURL.deletingLastPathComponent()
        // The workers apply the same guard: URLs of public hosts only, referenced paths inside the input's folder.
        var jobSpec = spec
        jobSpec.openAIFormat = batch.openAIFormat
        jobSpec.trustInput = trust.trustInput
        if images == .reference { jobSpec.imageFolder = base.path }
        var submission = JobSubmission(spec: jobSpec, source: "cli:\(inputURL.lastPathComponent)")
        submission.maxAttempts = maxAttempts
        let resolve = JobSubmission.localResolver(baseDirectory: base, mode: images, maxBytes: spec.maxImageBytes, trustInput: trust.trustInput)
        let isTTY = isatty(STDERR_FILENO) != 0
        let items = batch.items
        try await withJobQueue(database) { queue in
            let info = try await submission.submit(items, to: queue, resolve: resolve, progress: { stored, total in
                if isTTY { FileHandle.standardError.write(Data("\r\u{1B}[2Kstoring items: \(stored)/\(total)".utf8)) }
            })
            if isTTY { printError("") }
            let bad = info.failed
            printError("\(info.task): \(info.total) items stored (\(bad) bad record\(bad == 1 ? "" : "s") recorded as errors); state \(info.state.rawValue)")
            printError("watch it with: postlens jobs status \(info.id)")
            writeOut(info.id + "\n")
        }
    }
}

extension JobSubmission.ImageMode: ExpressibleByArgument {}
