import ArgumentParser
import Foundation

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

/// An error whose message is printed as is.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Writes to standard error (a line, unless `newline` is false).
func printError(_ message: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((newline ? message + "\n" : message).utf8))
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

