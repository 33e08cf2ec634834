import Analysis
import ArgumentParser
import Foundation
import JSON

/// `postlens analyze`: a task over a batch of posts, resumable, with per-item errors.
struct AnalyzeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Run an analysis task (ocr, describe, moderation, sentiment, promo, detect, custom) over posts.",
        discussion: """
        Input: JSON lines ({"id", "image", "text", "meta"} per line), CSV with a header row, or a folder of images \
        (a NAME.txt beside an image is its text). Image paths are relative to the input file's folder and must stay inside it; \
        http(s) URLs are fetched only from public hosts (size-capped, timed, redirects checked). --trust-input lifts both for \
        input you trust.
        A bad record (missing file, corrupt image, bad row) becomes that item's error and the run goes on. Job state is kept \
        in SQLite (--state, default OUTPUT.state.sqlite); --resume skips the items an interrupted run finished.
        Results go to --output (.jsonl, or .csv) or, without it, to stdout as JSON lines; the summary goes to stderr.
        detect (and moderation's evidence) locate things in the image: boxes in the model's 0-1000 frame (bbox_2d) and in \
        pixels of the original image (bbox_px); --draw DIR writes each post's image at its original size with its boxes drawn.
        """
    )

    @Option(help: "The task: \(TaskKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var task: String

    @Option(help: "posts.jsonl, posts.csv, or a folder of images.")
    var input: String

    @Option(help: "results.jsonl or results.csv (default: JSON lines on stdout).")
    var output: String?

    @OptionGroup var columns: InputColumnOptions

    @Flag(help: "Resume an interrupted run: items already in the job state are not redone.")
    var resume = false

    @Option(help: "The job state database (default: OUTPUT.state.sqlite, or INPUT.TASK.state.sqlite without --output).")
    var state: String?

    @Option(help: "Prompt language: zh or en.")
    var lang = "zh"

    @Option(help: "custom task: the instruction; detect task: what to look for (optional, e.g. \"competitor logos\").")
    var instruction: String?

    @Option(help: ArgumentHelp("detect and moderation: write each post's image with its boxes drawn into this folder (original size).",
                               valueName: "dir"))
    var draw: String?

    @Option(help: "custom task: the JSON schema of the answer (a file path, or inline JSON).")
    var schema: String?

    @Option(help: "ocr task: dense-text tiling for long screenshots and posters: auto, on, off.")
    var dense = "auto"

    @Option(name: .customLong("max-tokens"), help: "Most tokens per answer (default: the task's worst case, so the answer always closes; less is refused).")
    var maxTokens: Int?

    @Option(name: .customLong("max-reasoning-tokens"), help: "Thinking models: reasoning tokens before the answer must begin (default: half of --max-tokens).")
    var maxReasoningTokens: Int?

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Print the summary as JSON on stderr.")
    var jsonSummary = false

    @OptionGroup var trust: InputTrustOptions

    func validate() throws {
        guard TaskKind(rawValue: task) != nil else {
            throw ValidationError("unknown task \(task); one of \(TaskKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard PromptLanguage(rawValue: lang) != nil else { throw ValidationError("--lang must be zh or en") }
        guard RunOptions.DenseMode(rawValue: dense) != nil else { throw ValidationError("--dense must be auto, on or off") }
        if draw != nil, ![TaskKind.detect, .moderation].contains(TaskKind(rawValue: task)) {
            throw ValidationError("--draw needs a task with boxes: detect or moderation")
        }
        if let output, !["jsonl", "json", "csv", "ndjson"].contains(URL(fileURLWithPath: output).pathExtension.lowercased()) {
            throw ValidationError("--output must end in .jsonl or .csv")
        }
    }

    func run() async throws {
        do {
            try await analyze()
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    func makeTask() throws -> AnalysisTask {
        let kind = TaskKind(rawValue: task)!
        if kind == .detect { return AnalysisTask.detect(instruction: instruction) }
        guard kind == .custom else { return try AnalysisTask.builtIn(kind) }
        guard let instruction, let schema else { throw CLIError("--task custom needs --instruction and --schema") }
        let schemaText: String
        if FileManager.default.fileExists(atPath: schema), let data = FileManager.default.contents(atPath: schema) {
            schemaText = String(decoding: data, as: UTF8.self)
        } else {
            schemaText = schema
        }
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(schemaText) } catch { throw CLIError("--schema: \(error)") }
        return try AnalysisTask.custom(instruction: instruction, schema: parsed)
    }

    func analyze() async throws {
        let analysisTask = try makeTask()
        let inputURL = URL(fileURLWithPath: input).standardizedFileURL
        let items = try RecordReader.read(inputURL, columns: .init(id: columns.idColumn, text: columns.textColumn, image: columns.imageColumn))

        var options = RunOptions()
        options.language = PromptLanguage(rawValue: lang)!
        do { options.maxTokens = try analysisTask.maxTokens(requested: maxTokens) } catch { throw CLIError("--max-tokens \(error)") }
        options.maxReasoningTokens = maxReasoningTokens
        options.maxPixels = modelOptions.runtime.maxPixels
        options.dense = RunOptions.DenseMode(rawValue: dense)!
        options.trustInput = trust.trustInput
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: inputURL.path, isDirectory: &isDirectory)
        options.baseDirectory = isDirectory.boolValue ? inputURL : inputURL.deletingLastPathComponent()

        let engine = try await modelOptions.loadEngine()
        let runner = TaskRunner(task: analysisTask, analyzer: EngineAnalyzer(engine: engine), options: options,
                                baseParameters: engine.defaultParameters)

        let statePath = state ?? (output.map { $0 + ".state.sqlite" } ?? inputURL.path + ".\(analysisTask.name).state.sqlite")
        let store = try JobStore(path: statePath)
        let pipeline = BatchPipeline(runner: runner, store: store)
        let summary = try await pipeline.run(items, input: inputURL.path, resume: resume, progress: TerminalBatchProgress())

        if let output {
            try pipeline.export(to: URL(fileURLWithPath: output))
        } else {
            for line in try pipeline.exportLines() { writeOut(line + "\n") }
        }
        if let draw {
            let writer = AnnotationWriter(runner: runner, directory: URL(fileURLWithPath: draw))
            let lines = try pipeline.exportLines().compactMap { try? JSONValue.parse($0) }
            let report = try await writer.write(items: items, lines: lines)
            printError("drew \(report.written.count) image(s) into \(draw)"
                       + (report.skipped.isEmpty ? "" : "; \(report.skipped.count) post(s) without a drawing (see their error fields)"))
        }
        if jsonSummary {
            printError(summary.json.sortedText)
        } else {
            for line in summary.lines { printError(line) }
        }
    }
}
