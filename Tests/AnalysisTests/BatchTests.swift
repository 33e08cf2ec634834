@testable import Analysis
import Foundation
import JSON
import Testing
import TestSupport

/// Collects progress calls.
final class RecordingProgress: BatchProgressReporter, @unchecked Sendable {
    let lock = NSLock()
    var began: (Int, Int)?
    var updates: [Int] = []
    var ended = false
    func began(total: Int, alreadyDone: Int) { lock.lock(); began = (total, alreadyDone); lock.unlock() }
    func progressed(done: Int, failed: Int, total: Int, itemsPerSecond: Double?, etaSeconds: Double?) { lock.lock(); updates.append(done); lock.unlock() }
    func finished() { lock.lock(); ended = true; lock.unlock() }
}

func makePipeline(_ kind: TaskKind, dir: URL, options: RunOptions? = nil, analyzer: any PostAnalyzer = FakeEngine.analyzer()) throws -> BatchPipeline {
    var o = options ?? RunOptions()
    o.baseDirectory = dir
    let runner = TaskRunner(task: try AnalysisTask.builtIn(kind), analyzer: analyzer, options: o)
    return BatchPipeline(runner: runner, store: try JobStore(path: dir.appendingPathComponent("state.sqlite").path))
}

@Test func twoHundredRecordsWithFiveBadOnesGive195ResultsAnd5Errors() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let (input, badIDs) = try writeBatchInput(to: dir)
    let items = try RecordReader.read(input)
    #expect(items.count == 200)
    let pipeline = try makePipeline(.sentiment, dir: dir)
    let progress = RecordingProgress()
    let summary = try await pipeline.run(items, input: input.path, resume: false, progress: progress)
    #expect(summary.total == 200 && summary.succeeded == 195 && summary.failed == 5)
    #expect(summary.failures.map(\.id) == badIDs)
    #expect(summary.byPolarity == ["mixed": 195])
    #expect(progress.updates.count == 200 && progress.ended && progress.began! == (200, 0))

    let output = dir.appendingPathComponent("results.jsonl")
    try pipeline.export(to: output)
    let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
    #expect(lines.count == 200)
    #expect(Set(lines.compactMap { $0["id"]?.stringValue }).count == 200)
    let errors = lines.filter { $0["status"] == "error" }
    #expect(errors.count == 5)
    let messages = Dictionary(uniqueKeysWithValues: errors.map { ($0["id"]!.stringValue!, $0["error"]!.stringValue!) })
    #expect(messages["post-10"]?.hasPrefix("image not found") == true)
    #expect(messages["post-50"]?.hasPrefix("cannot decode image") == true)
    #expect(messages["line-91"] == "line 91: not valid JSON")
    #expect(messages["post-130"]?.contains("neither") == true)
    #expect(messages["post-170"]?.contains("must be a string") == true)
    #expect(lines.filter { $0["status"] == "ok" }.allSatisfy { $0["result"]?["polarity"] == "mixed" && $0["task_version"] == 2 })
}

@Test func resumeSkipsFinishedItemsAndRejectsAnotherJob() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let (input, _) = try writeBatchInput(to: dir, count: 30)
    let items = try RecordReader.read(input)
    let pipeline = try makePipeline(.moderation, dir: dir)
    #expect(try pipeline.store.journalMode() == "wal")
    // A first run that "died" after 12 items: run only those.
    _ = try await pipeline.run(Array(items.prefix(12)), input: input.path, resume: false)
    let progress = RecordingProgress()
    let summary = try await pipeline.run(items, input: input.path, resume: true, progress: progress)
    #expect(progress.began! == (30, 12))
    #expect(summary.resumed == 12 && summary.processed == 18 && summary.total == 30)
    #expect(summary.byVerdict["review"] == summary.succeeded)
    #expect(try pipeline.store.items().map(\.seq) == Array(0..<30))

    // A different task on the same state refuses to resume; without --resume it starts over.
    let other = BatchPipeline(runner: TaskRunner(task: try AnalysisTask.builtIn(.ocr), analyzer: FakeEngine.analyzer()), store: pipeline.store)
    await #expect(throws: TaskError.self) { _ = try await other.run(items, input: input.path, resume: true) }
    let fresh = try await pipeline.run(Array(items.prefix(3)), input: input.path, resume: false)
    #expect(fresh.total == 3 && fresh.resumed == 0)
}

@Test func csvOutputAndSummaryLines() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("small.png"))
    let csv = "\u{FEFF}id,image,text\r\n1,small.png,\"多行\n评论\"\r\n2,missing.png,x\r\n"
    let input = dir.appendingPathComponent("posts.csv")
    try csv.write(to: input, atomically: true, encoding: .utf8)
    let pipeline = try makePipeline(.moderation, dir: dir)
    let summary = try await pipeline.run(try RecordReader.read(input), input: input.path, resume: false)
    let out = dir.appendingPathComponent("results.csv")
    try pipeline.export(to: out)
    let rows = CSV.parse(try String(contentsOf: out, encoding: .utf8)).rows
    #expect(rows.first == ["id", "task", "status", "error", "verdict", "categories", "evidence_2d", "evidence_px", "result"])
    #expect(rows.count == 3)
    #expect(rows[1][2] == "ok" && rows[1][4] == "review" && rows[1][5] == "absolute_claim;contact_leak")
    // Evidence boxes in both frames: the model's 0–1000 and pixels of the 20×30 image.
    #expect(rows[1][6] == "全网最低价 [80,60,920,180]; 二维码 [700,760,960,980]")
    #expect(rows[1][7] == "全网最低价 [2,2,18,5]; 二维码 [14,23,19,29]")
    #expect(rows[2][2] == "error" && rows[2][3].hasPrefix("image not found"))
    #expect(summary.lines.contains("verdicts: allow 0, review 1, block 0"))
    #expect(summary.lines.contains { $0.hasPrefix("  2: image not found") })
}

@Test func denseOCRTilesLargeImagesAndMergesTheLines() async throws {
    var options = RunOptions()
    options.dense = .on
    options.tiling = .init(tileSize: 768, minOverlap: 96, maxTiles: 12)
    options.trustInput = true  // the fixture lies outside the working folder
    let runner = TaskRunner(task: try AnalysisTask.builtIn(.ocr), analyzer: FakeEngine.analyzer(), options: options)
    let outcome = await runner.run(PostRecord(id: "big", image: Paths.largeImage.path))
    #expect(outcome.ok, "\(outcome.error ?? "")")
    let plan = DenseText.plan(width: 2000, height: 1500, configuration: options.tiling)
    #expect(outcome.result?["tiles"] == JSONValue(plan.tiles.count))
    #expect(outcome.result?["lines"]?.arrayValue?.count == plan.tiles.count)
    #expect(outcome.result?["lines"]?.arrayValue == plan.tiles.indices.map { .string(FakeEngine.tileLine($0)) })
}

// MARK: The binary

/// A custom task whose answer is one boolean: the tiny random model's constrained answer always closes, so every good
/// record ends in a result through the real engine.
let booleanTask = ["--task", "custom", "--instruction", "Is this post about food?",
                   "--schema", #"{"type": "object", "properties": {"food": {"type": "boolean"}}, "required": ["food"]}"#]

/// Kills the binary (running the real tiny engine) with SIGKILL midway, resumes with --resume, and checks each id is in
/// the output exactly once.
@Test(.timeLimit(.minutes(5))) func sigkillMidwayThenResumeGivesEachIDOnce() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // The tiny engine answers ≈ 100 records a second here: enough of them that the kill lands midway.
    let count = 1000
    let (input, _) = try writeBatchInput(to: dir, count: count)
    let output = dir.appendingPathComponent("results.jsonl")
    let state = dir.appendingPathComponent("job.sqlite")
    let arguments = ["analyze"] + booleanTask + ["--input", input.path, "--output", output.path, "--state", state.path,
                                                 "--model", Paths.tinyModel.path, "--max-image-tokens", "4", "--threads", "1"]

    let process = Process()
    process.executableURL = Paths.binary
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Poll the job state until some, not all, items are done. The poll sleeps on its own thread (usleep, no await):
    // with `Task.sleep` it waited for a cooperative thread, and while other tests ran models on both threads of a
    // 2-core machine the child finished all records before the poll came back.
    var doneBeforeKill = 0
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline {
        usleep(20_000)
        if FileManager.default.fileExists(atPath: state.path), let n = try? JobStore(path: state.path).finishedCount(), n >= 20 {
            doneBeforeKill = n
            break
        }
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(process.terminationReason == .uncaughtSignal)
    #expect(doneBeforeKill >= 20 && doneBeforeKill < count, "killed after \(doneBeforeKill) items")
    #expect(!FileManager.default.fileExists(atPath: output.path))

    let resumed = try runBinary(arguments + ["--resume", "--json-summary"])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(resumed.stderr.contains("resuming: "))
    let summaryLine = try #require(resumed.stderr.split(separator: "\n").last)
    let summary = try JSONValue.parse(String(summaryLine))
    #expect(summary["total"] == JSONValue(count) && summary["failed"] == 5 && summary["succeeded"] == JSONValue(count - 5))
    let resumedCount = try #require(summary["resumed"]?.doubleValue)
    #expect(resumedCount >= Double(doneBeforeKill))
    #expect(summary["processed"]?.doubleValue == Double(count) - resumedCount)

    let ids = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0))["id"]?.stringValue ?? "" }
    #expect(ids.count == count)
    #expect(Set(ids).count == count)
}

/// A built-in task through the real (tiny, random) engine at its default budget: every good record gets a result (the
/// bounded schema closes whatever the random model writes), a bad one its error. A budget below the task's worst case
/// is refused before the model is loaded: it could cut the answer.
@Test(.timeLimit(.minutes(5))) func analyzeRunsTheRealTinyEngine() throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try writePosts(to: dir, """
    {"id": "a", "image": "small.png", "text": "到手价¥999"}
    {"id": "b", "image": "nope.png"}
    {"id": "c", "text": "只有文字"}
    """)
    let r = try runBinary(["analyze", "--task", "promo", "--model", Paths.tinyModel.path, "--input", input.path,
                           "--max-image-tokens", "4", "--threads", "1"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    #expect(lines.map { $0["id"]?.stringValue } == ["a", "b", "c"])
    for line in [lines[0], lines[2]] {
        #expect(line["status"] == "ok", "\(line.sortedText)")
        #expect((line["usage"]?["completion_tokens"]?.doubleValue ?? 0) > 0)
    }
    #expect(lines[1]["error"]?.stringValue?.hasPrefix("image not found") == true)
    #expect(r.stderr.contains("promo@2: 3 items, 2 ok, 1 failed"), "\(r.stderr)")
    #expect(r.stderr.contains("3/3 items"))  // plain progress lines when stderr is not a terminal

    let worst = try #require(try AnalysisTask.builtIn(.promo).worstCaseTokens)
    let refused = try runBinary(["analyze", "--task", "promo", "--model", "/nonexistent/model", "--input", input.path,
                                 "--max-tokens", "\(worst - 1)"])
    #expect(refused.status != 0 && refused.stderr.contains("--max-tokens must be at least \(worst)"), "\(refused.stderr)")
}

/// The success path through the real engine: every good record gets a schema-valid result, and the model runs in the
/// default format, q8 (the runtime cache it writes says so; F32 writes none).
@Test(.timeLimit(.minutes(5))) func analyzeSucceedsWithTheRealTinyEngineInQ8() throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = try writePosts(to: dir, """
    {"id": "a", "image": "small.png", "text": "红烧肉"}
    {"id": "b", "text": "只有文字"}
    """)
    let cache = dir.appendingPathComponent("cache")
    let r = try runBinary(["analyze"] + booleanTask + ["--model", Paths.tinyModel.path, "--input", input.path,
                                                       "--max-image-tokens", "4", "--threads", "1"],
                          environment: ["POSTLENS_CACHE": cache.path])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    #expect(lines.map { $0["id"]?.stringValue } == ["a", "b"])
    for line in lines {
        #expect(line["status"] == "ok", "\(line.sortedText)")
        #expect(line["result"]?["food"]?.boolValue != nil, "\(line.sortedText)")
        #expect((line["usage"]?["completion_tokens"]?.doubleValue ?? 0) >= 3)  // {"food":true} is several tokens
    }
    #expect((lines[0]["usage"]?["image_tokens"]?.doubleValue ?? 0) > 0)
    #expect(r.stderr.contains("custom@1: 2 items, 2 ok, 0 failed"), "\(r.stderr)")
    let written = (try? FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("runtime").path)) ?? []
    #expect(written.contains { $0.hasSuffix(".plw") }, "no q8 runtime cache was written: \(written)")
}

@Test func analyzeRejectsBadArguments() throws {
    // Each is refused before the model is loaded (the model folder is never read).
    let model = ["--model", "/nonexistent/model"]
    let r = try runBinary(["analyze", "--task", "poetry", "--input", "x.jsonl"] + model)
    #expect(r.status != 0 && r.stderr.contains("unknown task"))
    let missing = try runBinary(["analyze", "--task", "ocr", "--input", "/nonexistent/posts.jsonl"] + model)
    #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/posts.jsonl"))
    let custom = try runBinary(["analyze", "--task", "custom", "--input", "x.jsonl"] + model)
    #expect(custom.status != 0 && custom.stderr.contains("--instruction"))
    let noModel = try runBinary(["analyze", "--task", "ocr", "--input", "x.jsonl"])
    #expect(noModel.status != 0 && noModel.stderr.contains("--model"))
}

/// `postlens analyze` reads a record's image only inside the input's folder and fetches URLs only from public hosts
/// (issue 13 §6), unless the input is trusted.
@Test func imageReferencesAreGuardedUnlessTheInputIsTrusted() async throws {
    let dir = try Paths.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let posts = dir.appendingPathComponent("posts")
    try FileManager.default.createDirectory(at: posts, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: Paths.smallImage, to: posts.appendingPathComponent("inside.png"))
    try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("outside.png"))
    try FileManager.default.createSymbolicLink(at: posts.appendingPathComponent("link.png"), withDestinationURL: dir.appendingPathComponent("outside.png"))
    var options = RunOptions()
    options.baseDirectory = posts
    let references = ["inside.png", "../outside.png", dir.appendingPathComponent("outside.png").path, "link.png",
                      "file://" + dir.appendingPathComponent("outside.png").path, "http://127.0.0.1:9/x.png",
                      "http://169.254.169.254/latest/meta-data", "http://[::ffff:10.0.0.1]/x.png"]
    let guarded = TaskRunner(task: try AnalysisTask.builtIn(.describe), analyzer: FakeEngine.analyzer(), options: options)
    for reference in references {
        let outcome = await guarded.run(PostRecord(id: reference, image: reference))
        #expect(outcome.ok == (reference == "inside.png"), "\(reference): \(outcome.error ?? "ok")")
        if reference.hasPrefix("http") { #expect(outcome.error?.contains("private, loopback or link-local") == true, "\(reference)") }
    }
    options.trustInput = true
    let trusted = TaskRunner(task: try AnalysisTask.builtIn(.describe), analyzer: FakeEngine.analyzer(), options: options)
    for reference in references.prefix(5) {
        let outcome = await trusted.run(PostRecord(id: reference, image: reference))
        #expect(outcome.ok, "\(reference): \(outcome.error ?? "")")
    }
}
