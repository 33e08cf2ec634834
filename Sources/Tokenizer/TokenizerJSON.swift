import Foundation
import JSON

/// tokenizer.json and tokenizer_config.json read through the project's JSON module, with errors that name the
/// file and the key path (`model.vocab["abc"]`). tokenizer.json is ~11 MB with 151k vocabulary members, so duplicate
/// keys are not searched for (the file is the model's, not a client's).
struct JSONNode {
    let reader: JSONReader
    let file: String

    init(_ reader: JSONReader, file: String) {
        self.reader = reader
        self.file = file
    }

    static func parse(_ data: Data, file: String) throws(TokenizerError) -> JSONNode {
        var limits = JSONParser.Limits.files
        limits.rejectDuplicateKeys = false
        do {
            return JSONNode(JSONReader(try JSONParser.parse(data, limits: limits)), file: file)
        } catch {
            throw .malformedJSON(file: file, offset: error.offset, reason: error.reason)
        }
    }

    var value: JSONValue { reader.value }
    var path: String { reader.path }

    private func wrap(_ error: JSONReadError) -> TokenizerError {
        switch error.problem {
        case .missing: .invalidValue(file: file, keyPath: error.displayPath, expected: "present")
        case .wrongType(let expected, let found): .invalidValue(file: file, keyPath: error.displayPath, expected: "\(expected), found \(found)")
        case .invalid(let reason): .invalidValue(file: file, keyPath: error.displayPath, expected: reason)
        }
    }

    func mismatch(_ expected: String) -> TokenizerError { wrap(reader.mismatch(expected)) }

    /// The member `key`, or nil when it is absent or null.
    func optional(_ key: String) throws(TokenizerError) -> JSONNode? {
        do { return try reader.optional(key).map { JSONNode($0, file: file) } } catch { throw wrap(error) }
    }

    /// The member `key`; throws naming the key path when it is absent or null.
    func required(_ key: String) throws(TokenizerError) -> JSONNode {
        do { return JSONNode(try reader.required(key), file: file) } catch { throw wrap(error) }
    }

    func string() throws(TokenizerError) -> String {
        do { return try reader.string() } catch { throw wrap(error) }
    }

    func int() throws(TokenizerError) -> Int {
        do { return try reader.int() } catch { throw wrap(error) }
    }

    func bool() throws(TokenizerError) -> Bool {
        do { return try reader.bool() } catch { throw wrap(error) }
    }

    func array() throws(TokenizerError) -> [JSONNode] {
        do { return try reader.array().map { JSONNode($0, file: file) } } catch { throw wrap(error) }
    }

    /// Members in document order, as raw values (the vocabulary is iterated, and paths are made only on error).
    func members() throws(TokenizerError) -> [(key: String, value: JSONValue)] {
        do { return try reader.object().members } catch { throw wrap(error) }
    }

    /// The node of member `key` (whose value the caller already has), for its path in errors.
    func member(_ key: String, _ value: JSONValue) -> JSONNode {
        JSONNode(JSONReader(value, path: reader.path + "[" + JSONWriter.quoted(key) + "]"), file: file)
    }
}
