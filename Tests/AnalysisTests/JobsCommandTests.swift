import Analysis
import Foundation
import JSON
import Testing

/// `postlens jobs …` and `postlens worker` end to end on a SQLite job database (one machine; the PostgreSQL runs with
/// several workers are tests/live/test_scaling.py) with the tiny fixture model.
@Suite struct JobsCommandTests {
    /// A custom task whose schema leaves the random model nothing to invent: constrained decoding writes a valid answer.
    static let options = #"{"instruction": "Is this a complaint?", "schema": {"type": "object", "required": ["complaint"], "properties": {"complaint": {"type": "boolean"}}}, "max_tokens": 24, "max_pixels": 4096}"#

    @Test(.timeLimit(.minutes(5))) func submitWorkStatusResults() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.writePosts(to: dir)
        let database = "sqlite:" + dir.appendingPathComponent("jobs.sqlite").path

        let submitted = try runBinary(["jobs", "submit", "--database", database, "--task", "custom", "--input", input.path, "--options", Self.options])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let jobID = try #require(submitted.stdout.split(separator: "\n").last.map(String.init))
        #expect(jobID.hasPrefix("job_"))
        #expect(submitted.stderr.contains("12 items stored (3 bad records recorded as errors)"), "\(submitted.stderr)")

        let queued = try runBinary(["jobs", "status", "--database", database, jobID, "--json"])
        let before = try JSONValue.parse(queued.stdout)
        #expect(before["state"] == "queued" && before["total"] == 12 && before["done"] == 3 && before["failed"] == 3, "\(before)")

        let early = try runBinary(["jobs", "results", "--database", database, jobID])
        #expect(early.status != 0 && early.stderr.contains("--partial"), "results of an unfinished job are refused")

        let worker = try runBinary(["worker", "--database", database, "--model", Paths.tinyModel.path, "--threads", "1",
                                    "--concurrency", "3", "--exit-when-idle", "--log-level", "notice"])
        #expect(worker.status == 0, "\(worker.stderr)")

        let after = try JSONValue.parse(try runBinary(["jobs", "status", "--database", database, jobID, "--json"]).stdout)
        #expect(after["state"] == "completed", "\(after)")
        #expect(after["done"] == 12 && after["failed"] == 4 && after["running"] == 0, "\(after)")

        let output = dir.appendingPathComponent("out.jsonl")
        let results = try runBinary(["jobs", "results", "--database", database, jobID, "--output", output.path])
        #expect(results.status == 0, "\(results.stderr)")
        let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(lines.count == 12)
        #expect(Set(lines.compactMap { $0["id"]?.stringValue }).count == 12, "each record once")
        var errors: [String: String] = [:]
        for line in lines where line["status"] == "error" {
            errors[line["id"]?.stringValue ?? ""] = line["error"]?.stringValue ?? ""
        }
        #expect(errors.keys.sorted() == ["line-5", "post-2", "post-6", "post-9"], "\(errors)")
        #expect(errors["post-2"]?.hasPrefix("image not found") == true)
        #expect(errors["post-9"]?.hasPrefix("cannot decode image") == true, "found by the worker, not at submission")
        #expect(lines.filter { $0["status"] == "ok" }.allSatisfy { $0["result"]?["complaint"]?.boolValue != nil })

        let csv = dir.appendingPathComponent("out.csv")
        #expect(try runBinary(["jobs", "results", "--database", database, jobID, "--output", csv.path]).status == 0)
        #expect(try String(contentsOf: csv, encoding: .utf8).hasPrefix("id,task,status,error,result\r\n"))

        let list = try runBinary(["jobs", "list", "--database", database])
        #expect(list.stdout.contains(jobID) && list.stdout.contains("completed"))
        let cancel = try runBinary(["jobs", "cancel", "--database", database, jobID])
        #expect(cancel.stdout.contains("completed"), "a finished job stays finished")
    }

    /// 12 posts: 3 unreadable at submission (a missing image, a broken line, neither image nor text) and 1 whose image
    /// only the worker finds corrupt.
    static func writePosts(to dir: URL) throws -> URL {
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("corrupt.png"))
        // Images must lie in the input's folder (no --trust-input).
        try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("small.png"))
        var lines: [String] = []
        for i in 0..<12 {
            switch i {
            case 2: lines.append(#"{"id": "post-2", "image": "missing.png"}"#)
            case 4: lines.append(#"{"id": "post-4", "image": "#)
            case 6: lines.append(#"{"id": "post-6"}"#)
            case 9: lines.append(#"{"id": "post-9", "image": "corrupt.png", "text": "坏图"}"#)
            default: lines.append(#"{"id": "post-\#(i)", "image": "small.png", "text": "第\#(i)条：物流很快"}"#)
            }
        }
        let url = dir.appendingPathComponent("posts.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// `jobs submit` has `postlens analyze`'s image guard and its opt-out: image paths inside the input's folder, URLs
    /// of public hosts (checked by the worker that fetches them, as the job's spec says), unless --trust-input. Copied
    /// and referenced images alike.
    @Test(.timeLimit(.minutes(5))) func submitKeepsImagesInsideTheInputFolderUnlessTrusted() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inside = dir.appendingPathComponent("posts", isDirectory: true)
        try FileManager.default.createDirectory(at: inside, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Paths.smallImage, to: inside.appendingPathComponent("small.png"))
        try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("outside.png"))
        let input = inside.appendingPathComponent("posts.jsonl")
        try """
        {"id": "inside", "image": "small.png"}
        {"id": "escape", "image": "../outside.png"}
        {"id": "absolute", "image": "\(dir.appendingPathComponent("outside.png").path)"}
        {"id": "loopback", "image": "http://127.0.0.1:9/x.png"}
        """.write(to: input, atomically: true, encoding: .utf8)

        func run(_ extra: [String]) throws -> [String: JSONValue] {
            let database = "sqlite:" + dir.appendingPathComponent("jobs-\(extra.joined()).sqlite").path
            let submitted = try runBinary(["jobs", "submit", "--database", database, "--task", "custom", "--input", input.path,
                                           "--options", Self.options, "--max-attempts", "1"] + extra)
            #expect(submitted.status == 0, "\(submitted.stderr)")
            let jobID = try #require(submitted.stdout.split(separator: "\n").last.map(String.init))
            let worker = try runBinary(["worker", "--database", database, "--model", Paths.tinyModel.path, "--threads", "1", "--exit-when-idle"])
            #expect(worker.status == 0, "\(worker.stderr)")
            let out = try runBinary(["jobs", "results", "--database", database, jobID])
            var lines: [String: JSONValue] = [:]
            for line in try out.stdout.split(separator: "\n").map({ try JSONValue.parse(String($0)) }) {
                lines[line["id"]?.stringValue ?? ""] = line
            }
            return lines
        }

        for mode in [[], ["--images", "reference"]] {
            let guarded = try run(mode)
            #expect(guarded["inside"]?["status"] == "ok", "\(mode): \(String(describing: guarded["inside"]))")
            for id in ["escape", "absolute"] {
                #expect(guarded[id]?["error"]?.stringValue?.contains("outside the input's folder") == true,
                        "\(mode) \(id): \(String(describing: guarded[id]))")
            }
            #expect(guarded["loopback"]?["error"]?.stringValue?.contains("non-public") == true,
                    "\(mode): \(String(describing: guarded["loopback"]))")

            let trusted = try run(mode + ["--trust-input"])
            for id in ["inside", "escape", "absolute"] {
                #expect(trusted[id]?["status"] == "ok", "\(mode) \(id): \(String(describing: trusted[id]))")
            }
            // A trusted job's worker does try the loopback host (nothing listens there).
            let error = trusted["loopback"]?["error"]?.stringValue ?? ""
            #expect(error.contains("cannot download image") && !error.contains("non-public"), "\(mode): \(error)")
        }
    }

    /// A job is bounded: more records than --max-records, or a larger input than --max-input-mb, is refused whole.
    @Test func submitRefusesInputsOverItsLimits() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("posts.jsonl")
        try (0..<3).map { #"{"id": "p\#($0)", "text": "好评"}"# }.joined(separator: "\n").write(to: input, atomically: true, encoding: .utf8)
        let database = "sqlite:" + dir.appendingPathComponent("jobs.sqlite").path
        let tooMany = try runBinary(["jobs", "submit", "--database", database, "--task", "sentiment", "--input", input.path, "--max-records", "2"])
        #expect(tooMany.status != 0 && tooMany.stderr.contains("3 records, more than the 2"), "\(tooMany.stderr)")
        let big = dir.appendingPathComponent("big.jsonl")
        try Data(repeating: UInt8(ascii: " "), count: (1 << 20) + 1).write(to: big)
        let tooLarge = try runBinary(["jobs", "submit", "--database", database, "--task", "sentiment", "--input", big.path, "--max-input-mb", "1"])
        #expect(tooLarge.status != 0 && tooLarge.stderr.contains("more than the 1048576"), "\(tooLarge.stderr)")
        let list = try runBinary(["jobs", "list", "--database", database, "--json"])
        #expect(list.stdout.isEmpty, "nothing was stored: \(list.stdout)")
    }

    /// A line over the JSON limits of a request body (here: nesting deeper than 128) is that record's error, stored
    /// with the job like any bad record; the other records are stored and nothing is lost.
    @Test func submitRecordsALineOverTheJSONLimitsAsItsError() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("posts.jsonl")
        let deep = #"{"id": "deep", "text": "x", "meta": "# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}"
        try ([#"{"id": "fine", "text": "好评"}"#, deep].joined(separator: "\n")).write(to: input, atomically: true, encoding: .utf8)
        let database = "sqlite:" + dir.appendingPathComponent("jobs.sqlite").path
        let submitted = try runBinary(["jobs", "submit", "--database", database, "--task", "sentiment", "--input", input.path])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let jobID = try #require(submitted.stdout.split(separator: "\n").last.map(String.init))
        let status = try JSONValue.parse(try runBinary(["jobs", "status", "--database", database, jobID, "--json"]).stdout)
        #expect(status["total"] == 2 && status["failed"] == 1 && status["queued"] == 1, "\(status)")
        let results = try runBinary(["jobs", "results", "--database", database, jobID, "--partial"]).stdout
        let line = try JSONValue.parse(try #require(results.split(separator: "\n").first.map(String.init)))
        #expect(line["id"] == "line-2" && line["error"]?.stringValue == "line 2: refused: arrays and objects nest deeper than 128 levels",
                "\(line)")
    }

    @Test func openAIBatchInputKeepsCustomIDsAndWritesOpenAIOutput() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("requests.jsonl")
        let body = #""task": "custom", "options": \#(Self.options)"#
        try """
        {"custom_id": "req-1", "method": "POST", "url": "/v1/analyze", "body": {\(body), "text": "物流太慢了"}}
        {"custom_id": "req-2", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}
        {"custom_id": "req-3", "method": "POST", "url": "/v1/analyze", "body": {"task": "ocr", "text": "x"}}
        """.write(to: input, atomically: true, encoding: .utf8)
        let database = "sqlite:" + dir.appendingPathComponent("jobs.sqlite").path
        let submitted = try runBinary(["jobs", "submit", "--database", database, "--input", input.path])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let jobID = try #require(submitted.stdout.split(separator: "\n").last.map(String.init))
        let worker = try runBinary(["worker", "--database", database, "--model", Paths.tinyModel.path, "--threads", "1", "--exit-when-idle"])
        #expect(worker.status == 0, "\(worker.stderr)")
        let out = try runBinary(["jobs", "results", "--database", database, jobID])
        let lines = try out.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(lines.map { $0["custom_id"]?.stringValue } == ["req-1", "req-2", "req-3"])
        #expect(lines[0]["response"]?["status_code"] == 200 && lines[0]["error"] == .null, "\(lines[0])")
        #expect(lines[1]["error"]?["message"]?.stringValue?.contains("/v1/chat/completions is not supported") == true, "\(lines[1])")
        #expect(lines[2]["error"]?["message"]?.stringValue?.contains("differs from the job's task") == true, "\(lines[2])")
    }

    @Test func jobsCommandsExplainWhatIsMissing() throws {
        let noDatabase = try runBinary(["jobs", "list"])
        #expect(noDatabase.status != 0 && noDatabase.stderr.contains("POSTLENS_DATABASE_URL"), "\(noDatabase.stderr)")
        let badURL = try runBinary(["jobs", "list", "--database", "mysql://x"])
        #expect(badURL.status != 0 && badURL.stderr.contains("postgres://"), "\(badURL.stderr)")
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = "sqlite:" + dir.appendingPathComponent("jobs.sqlite").path
        let unknown = try runBinary(["jobs", "status", "--database", database, "job_nope"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no job with id 'job_nope'"), "\(unknown.stderr)")
        let input = dir.appendingPathComponent("p.jsonl")
        try #"{"id": "a", "text": "x"}"#.write(to: input, atomically: true, encoding: .utf8)
        let badOption = try runBinary(["jobs", "submit", "--database", database, "--task", "ocr", "--input", input.path, "--options", #"{"speed": 3}"#])
        #expect(badOption.status != 0 && badOption.stderr.contains("'speed' is not an option"), "\(badOption.stderr)")
        let noTask = try runBinary(["jobs", "submit", "--database", database, "--input", input.path])
        #expect(noTask.status != 0 && noTask.stderr.contains("--task is required"), "\(noTask.stderr)")
    }
}
