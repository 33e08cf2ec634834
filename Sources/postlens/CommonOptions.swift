import ArgumentParser
import Foundation
import Kernels

/// Options every model-running command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder (config.json, *.safetensors, tokenizer.json, preprocessor_config.json).")
    var model: String

    @Option(name: .long, help: "Compute threads (default: all cores).")
    var threads: Int?

    /// Applies the thread count and returns the model folder.
    func prepare() async throws -> URL {
        if let threads { Parallel.setThreadCount(threads) } else { Parallel.setThreadCount(Parallel.threadCount) }
        return try await resolveModelFolder(model)
    }
}

/// A `--model` argument as a folder. (Repo ids resolve through the hub cache once `postlens download` exists.)
func resolveModelFolder(_ argument: String) async throws -> URL {
    let url = URL(fileURLWithPath: (argument as NSString).expandingTildeInPath).standardizedFileURL
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw CLIError("model folder \(url.path) does not exist; pass a folder with config.json and *.safetensors")
    }
    return url
}

/// An error whose message is printed as is.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Writes to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Writes to standard output without buffering (streamed answers appear as they are generated).
func writeOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// JSON with stable key order, for `--json` outputs.
func jsonString(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}
