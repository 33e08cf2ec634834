import Foundation

/// Typed, path-aware reads from a decoded JSON object, so a missing or mistyped field is an error
/// that names the file and the full key path (`text_config.hidden_size`), and unknown fields are ignored.
struct JSONFields {
    let file: String
    let object: [String: Any]
    let path: String

    init(file: String, object: [String: Any], path: String = "") {
        self.file = file
        self.object = object
        self.path = path
    }

    static func load(_ url: URL) throws -> JSONFields {
        guard FileManager.default.fileExists(atPath: url.path) else { throw ConfigurationError.missingFile(url.path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConfigurationError.unreadable(file: url.lastPathComponent, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConfigurationError.unreadable(file: url.lastPathComponent, reason: "not a JSON object")
        }
        return JSONFields(file: url.lastPathComponent, object: object)
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }

    func nested(_ key: String) throws -> JSONFields {
        guard let value = object[key] else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        guard let dict = value as? [String: Any] else { throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "an object") }
        return JSONFields(file: file, object: dict, path: keyPath(key))
    }

    func optionalNested(_ key: String) throws -> JSONFields? { has(key) ? try nested(key) : nil }

    func int(_ key: String) throws -> Int {
        guard let value = try optionalInt(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber, let value = Int(exactly: number.doubleValue) else {
            throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "an integer")
        }
        return value
    }

    func double(_ key: String) throws -> Double {
        guard let value = try optionalDouble(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard has(key) else { return nil }
        guard let number = object[key] as? NSNumber else {
            throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "a number")
        }
        return number.doubleValue
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard has(key) else { return nil }
        guard let value = object[key] as? Bool else { throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "true or false") }
        return value
    }

    func string(_ key: String) throws -> String {
        guard let value = try optionalString(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    func optionalString(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        guard let value = object[key] as? String else { throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "a string") }
        return value
    }

    func ints(_ key: String) throws -> [Int] {
        guard let value = try optionalInts(key) else { throw ConfigurationError.missingKey(file: file, key: keyPath(key)) }
        return value
    }

    /// An integer array; a single integer is accepted as a one-element array (as `eos_token_id` may be either).
    func optionalInts(_ key: String) throws -> [Int]? {
        guard has(key) else { return nil }
        if let number = object[key] as? NSNumber, let value = Int(exactly: number.doubleValue) { return [value] }
        guard let array = object[key] as? [Any] else {
            throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "an array of integers")
        }
        return try array.map {
            guard let number = $0 as? NSNumber, let value = Int(exactly: number.doubleValue) else {
                throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "an array of integers")
            }
            return value
        }
    }

    func optionalDoubles(_ key: String) throws -> [Double]? {
        guard has(key) else { return nil }
        guard let array = object[key] as? [Any] else {
            throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "an array of numbers")
        }
        return try array.map {
            guard let number = $0 as? NSNumber else {
                throw ConfigurationError.wrongType(file: file, key: keyPath(key), expected: "an array of numbers")
            }
            return number.doubleValue
        }
    }
}
