import Foundation
import Testing

/// End-to-end tests of the `postlens` binary that `swift build` / `swift test` produce.
enum CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures")

    /// The built binary, beside the test bundle.
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("postlens")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/postlens")
    }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    static func run(_ arguments: [String], stdin: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func referenceCase(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("models/tiny/reference/cases.json"))
        return ((try JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [String: Any])[name] as! [String: Any]
    }
}

@Test func binaryExists() {
    #expect(FileManager.default.isExecutableFile(atPath: CLI.binary.path), "build the postlens product first: \(CLI.binary.path)")
}

@Test func askReproducesTheReferenceGreedyText() throws {
    let info = try CLI.referenceCase("one_image")
    let model = CLI.fixtures.appendingPathComponent("models/tiny").path
    let image = CLI.fixtures.appendingPathComponent("models/tiny/reference/img_a.png").path
    let streamed = try CLI.run(["ask", "--model", model, "--format", "f32", "--image", image, "--temperature", "0", "--max-tokens", "16", "Describe this image."])
    #expect(streamed.status == 0, "\(streamed.stderr)")
    #expect(streamed.stdout == (info["greedy_text"] as! String) + "\n")

    let json = try CLI.run(["ask", "--model", model, "--format", "f32", "--image", image, "--temperature", "0", "--max-tokens", "16", "--json", "-"],
                           stdin: "Describe this image.")
    #expect(json.status == 0, "\(json.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
    #expect(object["token_ids"] as? [Int] == info["greedy_ids"] as? [Int])
    #expect(object["finish_reason"] as? String == "length")
    let usage = object["usage"] as! [String: Any]
    #expect(usage["prompt_tokens"] as? Int == info["L"] as? Int)
    #expect(usage["image_tokens"] as? Int == info["M"] as? Int)
    let timings = object["timings"] as! [String: Any]
    for key in ["preprocess_ms", "vision_ms", "prefill_ms", "decode_ms"] { #expect(timings[key] is Double, "missing \(key)") }
}

@Test func askErrorsGoToStderrWithNonZeroExit() throws {
    let model = CLI.fixtures.appendingPathComponent("models/tiny").path
    let missingModel = try CLI.run(["ask", "--model", "/nonexistent/model", "hi"])
    #expect(missingModel.status != 0)
    #expect(missingModel.stderr.contains("/nonexistent/model"))
    #expect(missingModel.stdout.isEmpty)
    let badImage = try CLI.run(["ask", "--model", model, "--image", CLI.fixtures.appendingPathComponent("models/tiny/config.json").path, "hi"])
    #expect(badImage.status != 0)
    #expect(badImage.stderr.contains("config.json"))
}

@Test func tokenizePrintsIDs() throws {
    let model = CLI.fixtures.appendingPathComponent("models/tiny").path
    let r = try CLI.run(["tokenize", "--model", model, "<|im_start|>user"])
    #expect(r.status == 0)
    let ids = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [Int]
    #expect(ids.first == 4001)  // <|im_start|> in the trimmed fixture vocabulary
    // --json: an object (README: ids, tokens, count, load_ms), the same ids inside.
    let json = try CLI.run(["tokenize", "--model", model, "--json", "<|im_start|>user"])
    #expect(json.status == 0, "\(json.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
    #expect(Set(object.keys) == ["ids", "tokens", "count", "load_ms"])
    #expect(object["ids"] as? [Int] == ids && object["count"] as? Int == ids.count)
    #expect((object["tokens"] as? [String])?.first == "<|im_start|>")
}

@Test func inspectSummarizesAModelFolder() throws {
    let r = try CLI.run(["inspect", "--json", CLI.fixtures.appendingPathComponent("models/odd").path])
    #expect(r.status == 0, "\(r.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    #expect((object["dtypes"] as! [String: Int]).keys.sorted() == ["bf16"])
    #expect((object["text"] as! [String: Any])["kv_heads"] as? Int == 1)
    #expect((object["vision"] as! [String: Any])["deepstack_indexes"] as? [Int] == [0])
}

/// `postlens cpu` reports the level in use; `POSTLENS_ISA` forces a runnable one and refuses the rest with a reason.
@Test func cpuReportsAndForcesLevels() throws {
    let out = try CLI.run(["cpu", "--json"])
    #expect(out.status == 0, "\(out.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as! [String: Any]
    let runnable = report["runnable_levels"] as! [String]
    #expect(!runnable.isEmpty && runnable.contains(report["level"] as! String))
    for level in runnable {
        let forced = try CLI.runWithEnvironment(["cpu", "--json"], ["POSTLENS_ISA": level])
        let object = try JSONSerialization.jsonObject(with: Data(forced.stdout.utf8)) as! [String: Any]
        #expect(object["level"] as? String == level)
    }
    for level in ["portable", "avx2", "avx512", "amx"] where !runnable.contains(level) {
        let refused = try CLI.runWithEnvironment(["cpu"], ["POSTLENS_ISA": level])
        #expect(refused.status == 2 && refused.stderr.contains("cannot run here"), "\(level): \(refused.stderr)")
    }
    let unknown = try CLI.runWithEnvironment(["cpu"], ["POSTLENS_ISA": "sse9"])
    #expect(unknown.status == 2 && unknown.stderr.contains("not a level"))
}

/// `postlens bench` on the tiny fixture (not timed: figures present, finite and consistent).
@Test func benchReportsEveryFigureWithItsLimits() throws {
    let model = CLI.fixtures.appendingPathComponent("models/tiny").path
    let cache = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: cache) }
    let out = try CLI.runWithEnvironment(["bench", "--model", model, "--decode-tokens", "4", "--image-size", "64", "--json"],
                                         ["POSTLENS_CACHE": cache.path])
    #expect(out.status == 0, "\(out.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as! [String: Any]
    for key in ["bandwidth_gbps", "int8_peak_gops", "fma_peak_gflops", "sgemm_gflops", "vision_ms", "prefill_ms", "ttft_ms",
                "decode_tokens_per_s", "prefill_fraction_of_int8_peak", "vision_fraction_of_int8_peak", "peak_rss_mb"] {
        let value = report[key] as? Double
        #expect(value != nil && value!.isFinite && value! > 0, "\(key) = \(String(describing: report[key]))")
    }
    #expect(report["format"] as? String == "q8")
    #expect((report["isa_levels_runnable"] as? [String])?.contains(report["isa_level"] as? String ?? "?") == true)
    #expect(report["load_warm_used_runtime_cache"] as? Bool == true)
}

extension CLI {
    /// `run` with extra environment variables.
    static func runWithEnvironment(_ arguments: [String], _ environment: [String: String]) throws -> Output {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

@Test func downloadKnowsTheFamily() throws {
    let list = try CLI.run(["download", "--list"])
    #expect(list.status == 0, "\(list.stderr)")
    let lines = list.stdout.split(separator: "\n")
    #expect(lines.count == 6)
    for size in ["2B", "4B", "8B"] {
        #expect(list.stdout.contains("Qwen/Qwen3-VL-\(size)-Instruct") && list.stdout.contains("Qwen/Qwen3-VL-\(size)-Thinking"))
        #expect(list.stdout.contains("qwen3-vl-\(size.lowercased())-thinking"))
    }
}

@Test func askOnAThinkingModelSeparatesReasoningFromTheAnswer() throws {
    let model = CLI.fixtures.appendingPathComponent("models/thinking").path
    let json = try CLI.run(["ask", "--model", model, "--format", "f32", "--temperature", "0", "--max-tokens", "12",
                            "--max-reasoning-tokens", "4", "--json", "How much?"])
    #expect(json.status == 0, "\(json.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
    #expect((object["reasoning"] as? String)?.isEmpty == false)
    #expect((object["text"] as? String)?.isEmpty == false)
    #expect((object["usage"] as? [String: Any])?["reasoning_tokens"] as? Int == 6)  // 4 + "\n" + "</think>"
    // Streaming: the answer on stdout, the reasoning on stderr.
    let streamed = try CLI.run(["ask", "--model", model, "--format", "f32", "--temperature", "0", "--max-tokens", "12",
                                "--max-reasoning-tokens", "4", "How much?"])
    #expect(streamed.stdout == (object["text"] as! String) + "\n")
    #expect(streamed.stderr.contains(object["reasoning"] as! String))
    let off = try CLI.run(["ask", "--model", model, "--format", "f32", "--temperature", "0", "--max-tokens", "4", "--no-think", "--json", "Hi"])
    #expect((try JSONSerialization.jsonObject(with: Data(off.stdout.utf8)) as! [String: Any])["reasoning"] is NSNull)
}
