import ArgumentParser
import Foundation
import Hub
import Kernels
import Qwen3VL

/// Options every model-running command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model folder, a Hugging Face repo id such as Qwen/Qwen3-VL-2B-Instruct, or an alias such as 8b-thinking (downloaded on first use).")
    var model: String

    @Option(name: .long, help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Runtime weight format: q8 (default; 8-bit blocks, ≈1.1 bytes/weight), q4, or f32 (reference).")
    var format: WeightFormat = .q8

    var weightFormat: WeightFormat { format }

    /// Applies the thread count and returns the model folder.
    func prepare() async throws -> URL {
        if let threads { Parallel.setThreadCount(threads) } else { Parallel.setThreadCount(Parallel.threadCount) }
        return try await resolveModelFolder(model)
    }
}

/// Which fields of the input records hold the id, the text and the image (`analyze`, `jobs submit`).
struct InputColumnOptions: ParsableArguments {
    @Option(name: .customLong("text-column"), help: "The text field/column.")
    var textColumn = "text"

    @Option(name: .customLong("image-column"), help: "The image field/column.")
    var imageColumn = "image"

    @Option(name: .customLong("id-column"), help: "The id field/column.")
    var idColumn = "id"
}

/// The image guard's opt-out (`analyze`, `jobs submit`): without it a record's image path must lie inside the input's
/// folder (after `..` and symlinks are resolved) and an image URL must name a public host.
struct InputTrustOptions: ParsableArguments {
    @Flag(name: .customLong("trust-input"), help: "Trusted input: image paths may lie outside the input's folder and image URLs may name private or loopback hosts.")
    var trustInput = false
}

/// A `--model` argument as a folder: a folder path is used as is; a repo id (`org/name[@revision]`) is
/// found in the Hugging Face cache or downloaded on first use (with progress on stderr) unless
/// `HF_HUB_OFFLINE=1`.
func resolveModelFolder(_ argument: String) async throws -> URL {
    // An alias of a Qwen3-VL model (`4b-thinking`) names its repo, unless a folder of that name exists.
    var argument = argument
    if !FileManager.default.fileExists(atPath: (argument as NSString).expandingTildeInPath), let member = Qwen3VLFamily.member(named: argument) {
        argument = member.repo
    }
    return try await ModelLocator.resolve(argument, configuration: .fromEnvironment(), download: true,
                                          progress: TerminalProgressReporter())
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

extension WeightFormat: ExpressibleByArgument {}
