import Foundation
import Tokenizer

/// The golden files of Tests/Fixtures/tokenizer (made by tools/fixtures/make_tokenizer_fixtures.py).
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer")

    /// A temporary directory holding tokenizer.json (gunzipped) and tokenizer_config.json.
    static let tokenizerDirectory: URL = {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("postlens-tokenizer-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let output = dir.appendingPathComponent("tokenizer.json")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try! FileHandle(forWritingTo: output)
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-dc", directory.appendingPathComponent("tokenizer.json.gz").path]
        gunzip.standardOutput = handle
        try! gunzip.run()
        gunzip.waitUntilExit()
        try! handle.close()
        precondition(gunzip.terminationStatus == 0, "gzip -dc failed")
        try! FileManager.default.copyItem(
            at: directory.appendingPathComponent("tokenizer_config.json"),
            to: dir.appendingPathComponent("tokenizer_config.json"))
        return dir
    }()

    static let tokenizer: Tokenizer = try! Tokenizer(directory: tokenizerDirectory)

    static let corpus: Corpus = decode(Corpus.self, "corpus.json")
    static let unicode: UnicodeTables = decode(UnicodeTables.self, "unicode.json")

    private static func decode<T: Decodable>(_ type: T.Type, _ name: String) -> T {
        let data = try! Data(contentsOf: directory.appendingPathComponent(name))
        return try! JSONDecoder().decode(T.self, from: data)
    }
}

struct Corpus: Decodable {
    struct Entry: Decodable {
        let text: String
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
        let nfc: String
        let ids_no_added_tokens: [Int]?
        let ids_split_special_tokens: [Int]?
    }
    struct DecodeCase: Decodable {
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
    }
    let vocab_size: Int
    let special_ids: [Int]
    let entries: [Entry]
    let decode_cases: [DecodeCase]
}

struct UnicodeTables: Decodable {
    struct Contractions: Decodable {
        let candidates: [UInt32]
        let accepted: [String: [UInt32]]
    }
    let classes: [String: [[UInt32]]]
    let nfc: [[String]]
    let contraction_letters: Contractions
}

/// Byte-exact string equality (Swift's == treats canonically equivalent strings as equal).
func sameBytes(_ a: String, _ b: String) -> Bool { Array(a.utf8) == Array(b.utf8) }

/// Escapes a string for readable failure messages.
func show(_ s: String) -> String { s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined() }
