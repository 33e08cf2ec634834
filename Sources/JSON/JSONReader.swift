/// Typed reads from a parsed document that know where they are, so that every problem names its field:
/// `messages[0].content[1].image_url.url`, `text_config.hidden_size`. Each module turns `JSONReadError` into its
/// own error (an HTTP 400 with `param`, a configuration error naming the file).
///
/// Absent members and `null` read the same (`optional` returns nil for both), as OpenAI's API and Hugging Face's
/// configs treat them. Unknown members are ignored: readers ask for what they need.
public struct JSONReader: Sendable {
    public let value: JSONValue
    /// Where `value` sits: empty for the top level, then `key`, `.key`, `[index]` steps.
    public let path: String

    public init(_ value: JSONValue, path: String = "") {
        self.value = value
        self.path = path
    }

    // MARK: Navigation

    /// The path of member `key` below this one. Keys that are not plain names are quoted: `["a.b"]`.
    public func childPath(_ key: String) -> String {
        let plain = !key.isEmpty && key.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == 0x5F || b == 0x2D || b == 0x24
        }
        if !plain { return path + "[" + JSONWriter.quoted(key) + "]" }
        return path.isEmpty ? key : path + "." + key
    }

    public func childPath(_ index: Int) -> String { path + "[\(index)]" }

    /// The member `key`, or nil when it is absent or null. Throws when this value is not an object.
    public func optional(_ key: String) throws(JSONReadError) -> JSONReader? {
        guard case .object(let object) = value else { throw mismatch("an object") }
        guard let member = object[key], !member.isNull else { return nil }
        return JSONReader(member, path: childPath(key))
    }

    /// The member `key`; throws naming its path when it is absent or null.
    public func required(_ key: String) throws(JSONReadError) -> JSONReader {
        guard let member = try optional(key) else { throw JSONReadError(path: childPath(key), problem: .missing) }
        return member
    }

    /// Whether member `key` is present and not null.
    public func has(_ key: String) -> Bool {
        guard let member = value[key] else { return false }
        return !member.isNull
    }

    /// The elements, each with its path.
    public func array() throws(JSONReadError) -> [JSONReader] {
        guard case .array(let elements) = value else { throw mismatch("an array") }
        return elements.enumerated().map { JSONReader($0.element, path: childPath($0.offset)) }
    }

    /// The members in document order, each with its path.
    public func members() throws(JSONReadError) -> [(key: String, value: JSONReader)] {
        guard case .object(let object) = value else { throw mismatch("an object") }
        return object.members.map { (key: $0.key, value: JSONReader($0.value, path: childPath($0.key))) }
    }

    public func object() throws(JSONReadError) -> JSONObject {
        guard case .object(let object) = value else { throw mismatch("an object") }
        return object
    }

    // MARK: Scalars

    public func string() throws(JSONReadError) -> String {
        guard case .string(let s) = value else { throw mismatch("a string") }
        return s
    }

    public func bool() throws(JSONReadError) -> Bool {
        guard case .bool(let b) = value else { throw mismatch("a boolean") }
        return b
    }

    /// A whole number that fits in `Int` (`3`, `3.0` and `3e0` all read as 3).
    public func int() throws(JSONReadError) -> Int {
        guard case .number(let n) = value else { throw mismatch("an integer") }
        guard let i = n.int else { throw JSONReadError(path: path, problem: .wrongType(expected: "an integer", found: "\(n.text)")) }
        return i
    }

    public func double() throws(JSONReadError) -> Double {
        guard case .number(let n) = value else { throw mismatch("a number") }
        return n.double
    }

    public func number() throws(JSONReadError) -> JSONNumber {
        guard case .number(let n) = value else { throw mismatch("a number") }
        return n
    }

    /// An error at this path saying what was expected instead of what is here.
    public func mismatch(_ expected: String) -> JSONReadError {
        JSONReadError(path: path, problem: .wrongType(expected: expected, found: value.typeDescription))
    }

    /// An error at this path with a reason of the caller's.
    public func invalid(_ reason: String) -> JSONReadError {
        JSONReadError(path: path, problem: .invalid(reason))
    }

    // MARK: Optional members, typed

    public func optionalString(_ key: String) throws(JSONReadError) -> String? { try optional(key)?.string() }
    public func optionalBool(_ key: String) throws(JSONReadError) -> Bool? { try optional(key)?.bool() }
    public func optionalInt(_ key: String) throws(JSONReadError) -> Int? { try optional(key)?.int() }
    public func optionalDouble(_ key: String) throws(JSONReadError) -> Double? { try optional(key)?.double() }
}

/// A field that is missing, of the wrong type, or invalid, with its path.
public struct JSONReadError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Problem: Equatable, Sendable {
        case missing
        case wrongType(expected: String, found: String)
        case invalid(String)
    }

    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    /// The path as messages show it (`(top level)` for the document itself).
    public var displayPath: String { path.isEmpty ? "(top level)" : path }

    public var description: String {
        switch problem {
        case .missing: "missing required field '\(displayPath)'"
        case .wrongType(let expected, let found): "invalid type for '\(displayPath)': expected \(expected), found \(found)"
        case .invalid(let reason): "invalid value for '\(displayPath)': \(reason)"
        }
    }
}
