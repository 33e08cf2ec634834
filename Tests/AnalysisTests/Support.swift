import Foundation

enum Paths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures")
    static let golden = root.appendingPathComponent("Tests/AnalysisTests/Golden")
    static let tinyModel = fixtures.appendingPathComponent("models/tiny")
    static let smallImage = fixtures.appendingPathComponent("images/tiny_20x30.png")
    static let largeImage = fixtures.appendingPathComponent("images/large_2000x1500.jpg")

    /// The built `postlens` binary (as Tests/CLITests finds it).
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("postlens")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/postlens")
    }

    /// A fresh temporary folder.
    static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("postlens-analysis-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs the binary to completion.
struct ProcessOutput { let status: Int32; let stdout: String; let stderr: String }

func runBinary(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = Paths.binary
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so neither fills up.
    final class Box: @unchecked Sendable { var data = Data() }
    let errData = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessOutput(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: errData.data, as: UTF8.self))
}

/// 200 records over the small fixture image, 5 of them deliberately bad (at positions 10, 50, 90, 130, 170).
func writeBatchInput(to dir: URL, count: Int = 200) throws -> (url: URL, badIDs: [String]) {
    let corrupt = dir.appendingPathComponent("corrupt.png")
    try Data("this is not an image".utf8).write(to: corrupt)
    // Images must lie in the input's folder (RunOptions.trustInput is off).
    try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("small.png"))
    var lines: [String] = []
    var bad: [String] = []
    for i in 0..<count {
        let id = "post-\(i)"
        switch i {
        case 10: lines.append(#"{"id": "\#(id)", "image": "missing/nowhere.png", "text": "缺图"}"#); bad.append(id)
        case 50: lines.append(#"{"id": "\#(id)", "image": "corrupt.png", "text": "坏图"}"#); bad.append(id)
        case 90: lines.append(#"{"id": "\#(id)", "image": "#); bad.append("line-\(i + 1)")  // broken JSON line
        case 130: lines.append(#"{"id": "\#(id)", "meta": {"note": "neither image nor text"}}"#); bad.append(id)
        case 170: lines.append(#"{"id": "\#(id)", "image": 42, "text": "image is a number"}"#); bad.append(id)
        default: lines.append(#"{"id": "\#(id)", "image": "small.png", "text": "第\#(i)条评论：物流很快，包装完好", "meta": {"date": "2026-10-01"}}"#)
        }
    }
    let url = dir.appendingPathComponent("posts.jsonl")
    try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    return (url, bad)
}

/// `dir/posts.jsonl` with these lines, beside a copy of the small fixture image as `small.png`.
func writePosts(to dir: URL, _ lines: String) throws -> URL {
    try FileManager.default.copyItem(at: Paths.smallImage, to: dir.appendingPathComponent("small.png"))
    let input = dir.appendingPathComponent("posts.jsonl")
    try lines.write(to: input, atomically: true, encoding: .utf8)
    return input
}
