import ArgumentParser
import Foundation
import Tokenizer

/// `postlens tokenize`: the token ids of a text, as the model sees it.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print the token ids of TEXT as a JSON array.")

    @Option(help: "Model folder (or any folder with tokenizer.json).")
    var model: String

    @Flag(help: "Print an object with ids, tokens and the load time instead of just the ids.")
    var json = false

    @Flag(name: .customLong("no-special"), help: "Do not match special-token strings in TEXT (treat them as plain text).")
    var noSpecial = false

    @Argument(help: "The text ('-' for standard input).")
    var text: String

    func run() throws {
        do {
            let start = Date()
            let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
            let loadMs = Date().timeIntervalSince(start) * 1000
            let input = text == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : text
            let ids = tokenizer.encode(input, parseSpecialTokens: !noSpecial)
            if json {
                let tokens = ids.map { tokenizer.tokenString($0) ?? "" }
                print(jsonString(["ids": ids, "tokens": tokens, "count": ids.count, "load_ms": loadMs]))
            } else {
                print(jsonString(ids))
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }
}
