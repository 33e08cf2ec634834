import Foundation
import Testing
@testable import Hub

/// The Python interpreter for the fake hub and the interop tests (`PYTHON` overrides `python3`).
let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"

/// A scratch folder removed when the test ends.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("hubtests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func sub(_ name: String) -> URL { url.appendingPathComponent(name, isDirectory: true) }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A tiny model repository generated at test time (nothing binary is committed): a few small
/// text files (regular git files on the fake hub, one of them in a subfolder, one empty) and one
/// 3 MB pseudo-random `model.safetensors` (an LFS file, since it is over the 1 MiB threshold).
struct Fixture {
    static let repo = "test-org/tiny-model"
    static let bigFile = "model.safetensors"
    static let bigSize = 3 * 1024 * 1024 + 123

    let folder: URL
    var files: [String: Data] = [:]

    init(in parent: URL) throws {
        folder = parent.appendingPathComponent("fixture", isDirectory: true)
        files["config.json"] = Data(#"{"model_type": "qwen3_vl", "hidden_size": 8}"#.utf8)
        files["tokenizer_config.json"] = Data(#"{"model_max_length": 128}"#.utf8)
        files["docs/notes.txt"] = Data("a file in a subfolder\n".utf8)
        files["empty.txt"] = Data()
        var generator = SplitMix64(seed: 0x5EED)
        var big = [UInt8](repeating: 0, count: Fixture.bigSize)
        for i in stride(from: 0, to: big.count, by: 8) {
            let value = generator.next()
            for j in 0..<min(8, big.count - i) { big[i + j] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(j))) }
        }
        files[Fixture.bigFile] = Data(big)
        for (path, data) in files {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `fake_hub.py` running on a free loopback port. It stops when `stop()` is called or when this
/// process goes away (it exits when its stdin closes), so no server outlives its test.
final class FakeHub {
    let process = Process()
    private let input = Pipe()
    let port: Int
    let statsFile: URL
    var endpoint: String { "http://127.0.0.1:\(port)" }

    struct Stats: Decodable {
        struct Request: Decodable {
            let method: String
            let path: String
            let url: String
            let range: String?
            let authorization: String?
            let status: Int
            let bytes: Int
        }
        let requests: [Request]
        let bytes_by_path: [String: Int]
    }

    init(fixture: Fixture, scratch: URL, options: [String] = []) throws {
        statsFile = scratch.appendingPathComponent("stats-\(UUID().uuidString).json")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fake_hub.py")
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script.path, "--root", fixture.folder.path, "--repo", Fixture.repo,
                             "--port", "0", "--stats", statsFile.path] + options
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        // First line: "PORT <n>".
        var line = Data()
        let reader = output.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            process.terminate()
            throw FakeHubError(message: "fake_hub.py did not start (printed '\(text)'); is \(python) installed?")
        }
        self.port = port
    }

    struct FakeHubError: Error, CustomStringConvertible { let message: String; var description: String { message } }

    func stats() throws -> Stats {
        guard let data = try? Data(contentsOf: statsFile) else { return Stats(requests: [], bytes_by_path: [:]) }
        return try JSONDecoder().decode(Stats.self, from: data)
    }

    /// Requests for file contents (resolve or CDN) that sent a body.
    func fileRequests() throws -> [Stats.Request] {
        try stats().requests.filter { $0.method == "GET" && !$0.path.hasPrefix("/") }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// A configuration for tests: the given endpoint and cache, fast retries.
func testConfiguration(endpoint: String, cache: URL, token: String? = nil, offline: Bool = false) -> HubConfiguration {
    var configuration = HubConfiguration(endpoint: endpoint, token: token, cacheDirectory: cache, offline: offline)
    configuration.initialBackoff = .milliseconds(10)
    configuration.maxBackoff = .milliseconds(50)
    configuration.connectTimeout = .seconds(2)
    configuration.readTimeout = .seconds(10)
    configuration.diskSpaceReserve = 0
    return configuration
}

/// Records the progress a download reports, one line per call: `started REPO FILES TOTAL DONE`,
/// `progressed DONE FILE`, `note MESSAGE`, `finished DONE`.
final class RecordedProgress: DownloadProgressReporter, @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private func add(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var events: [String] { lock.lock(); defer { lock.unlock() }; return lines }

    func started(repo: String, fileCount: Int, totalBytes: Int64, completedBytes: Int64) {
        add("started \(repo) \(fileCount) \(totalBytes) \(completedBytes)")
    }
    func progressed(completedBytes: Int64, currentFile: String) { add("progressed \(completedBytes) \(currentFile)") }
    func note(_ message: String) { add("note \(message)") }
    func finished(completedBytes: Int64) { add("finished \(completedBytes)") }
}

/// Runs a program to completion and returns (exit status, stdout, stderr).
@discardableResult
func runProcess(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("proc-\(UUID().uuidString)")
    let outURL = scratch.appendingPathExtension("out")
    let errURL = scratch.appendingPathExtension("err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return (process.terminationStatus, out, err)
}

/// Whether `huggingface_hub` can be imported; records a failing issue (with the fix) if not.
func requireHuggingfaceHub() throws -> Bool {
    let (status, _, err) = try runProcess([python, "-c", "import huggingface_hub"])
    if status != 0 {
        Issue.record("""
            The interop test needs the PyPI package huggingface_hub importable by '\(python)'. \
            Install it with: \(python) -m pip install huggingface_hub  (or set PYTHON to an interpreter \
            that has it). Import error: \(err.suffix(300))
            """)
        return false
    }
    return true
}

/// The files under `folder` (following symlinks), relative path → content.
func readTree(_ folder: URL) throws -> [String: Data] {
    var result: [String: Data] = [:]
    let base = folder.resolvingSymlinksInPath().path
    guard let enumerator = FileManager.default.enumerator(atPath: base) else { return result }
    while let relative = enumerator.nextObject() as? String {
        let url = URL(fileURLWithPath: base).appendingPathComponent(relative)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
        if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
        result[relative] = try Data(contentsOf: url)
    }
    return result
}
