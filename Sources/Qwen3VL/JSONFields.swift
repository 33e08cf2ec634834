import Foundation
import JSON

/// Typed, path-aware reads from a model folder's JSON file, so a missing or mistyped field is an error that names
/// the file and the full key path (`text_config.hidden_size`), and unknown fields are ignored. A thin layer over
/// the JSON module's `JSONReader` that speaks `ConfigurationError`.
struct JSONFields {
    let file: String
    let reader: JSONReader

    var path: String { reader.path }

    init(file: String, reader: JSONReader) {
        self.file = file
        self.reader = reader
    }

    /// Parses a document that must be an object.
    init(file: String, data: Data) throws {
        let value: JSONValue
        do { value = try JSONParser.parse(data, limits: .files) } catch {
            throw ConfigurationError.unreadable(file: file, reason: "not valid JSON: \(error)")
        }
        guard case .object = value else { throw ConfigurationError.unreadable(file: file, reason: "not a JSON object") }
        self.init(file: file, reader: JSONReader(value))
    }

    static func load(_ url: URL) throws -> JSONFields {
        guard FileManager.default.fileExists(atPath: url.path) else { throw ConfigurationError.missingFile(url.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConfigurationError.unreadable(file: url.lastPathComponent, reason: "cannot read: \(error.localizedDescription)")
        }
        return try JSONFields(file: url.lastPathComponent, data: data)
    }

    func keyPath(_ key: String) -> String { reader.childPath(key) }

    func has(_ key: String) -> Bool { reader.has(key) }

    private func wrap(_ error: JSONReadError) -> ConfigurationError {
        switch error.problem {
        case .missing: .missingKey(file: file, key: error.path)
        case .wrongType(let expected, _): .wrongType(file: file, key: error.path, expected: expected)
        case .invalid(let reason): .invalidValue(file: file, key: error.path, reason: reason)
        }
    }

    /// Runs a read, turning its error into a `ConfigurationError`; `expected` replaces the reader's wording.
    private func read<T>(_ expected: String? = nil, _ body: () throws(JSONReadError) -> T) throws -> T {
        do { return try body() } catch {
            if let expected, case .wrongType = error.problem { throw ConfigurationError.wrongType(file: file, key: error.path, expected: expected) }
            throw wrap(error)
        }
    }

    func nested(_ key: String) throws -> JSONFields {
        let child = try read { () throws(JSONReadError) in try reader.required(key) }
        guard case .object = child.value else { throw ConfigurationError.wrongType(file: file, key: child.path, expected: "an object") }
        return JSONFields(file: file, reader: child)
    }

    func optionalNested(_ key: String) throws -> JSONFields? { has(key) ? try nested(key) : nil }

    func int(_ key: String) throws -> Int {
        guard let value = try optionalInt(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    func optionalInt(_ key: String) throws -> Int? { try read("an integer") { () throws(JSONReadError) in try reader.optionalInt(key) } }

    func double(_ key: String) throws -> Double {
        guard let value = try optionalDouble(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    func optionalDouble(_ key: String) throws -> Double? { try read("a number") { () throws(JSONReadError) in try reader.optionalDouble(key) } }

    func optionalBool(_ key: String) throws -> Bool? { try read("true or false") { () throws(JSONReadError) in try reader.optionalBool(key) } }

    func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    func optionalString(_ key: String) throws -> String? { try read("a string") { () throws(JSONReadError) in try reader.optionalString(key) } }

    func ints(_ key: String) throws -> [Int] {
        guard let value = try optionalInts(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    /// An integer array; a single integer is accepted as a one-element array (as `eos_token_id` may be either).
    func optionalInts(_ key: String) throws -> [Int]? {
        try read("an array of integers") { () throws(JSONReadError) -> [Int]? in
            guard let node = try reader.optional(key) else { return nil }
            if case .number = node.value { return [try node.int()] }
            var values: [Int] = []
            for element in try node.array() { values.append(try element.int()) }
            return values
        }
    }

    func optionalDoubles(_ key: String) throws -> [Double]? {
        try read("an array of numbers") { () throws(JSONReadError) -> [Double]? in
            guard let node = try reader.optional(key) else { return nil }
            var values: [Double] = []
            for element in try node.array() { values.append(try element.double()) }
            return values
        }
    }
}
