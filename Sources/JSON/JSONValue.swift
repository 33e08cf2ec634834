/// The project's one JSON value: configs, tokenizer.json, request bodies, schemas, model answers, exports.
///
/// Objects keep their members in document order (a schema's property order is the order constrained decoding
/// writes keys in; a dictionary would lose it) and numbers keep the text they were written with (exact bounds,
/// exact echo, no detour through `Double` for 64-bit ids). Equality follows JSON's meaning rather than its
/// spelling: object members compare without regard to order, numbers by value (`1` equals `1.0`).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public init(_ value: Bool) { self = .bool(value) }
    public init(_ value: String) { self = .string(value) }
    public init(_ value: Int) { self = .number(JSONNumber(value)) }
    /// A number, or `null` for NaN and infinities (which JSON cannot write).
    public init(_ value: Double) { self = value.isFinite ? .number(JSONNumber(value)) : .null }

    /// The member named `key` of an object (nil for other values and absent keys).
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var isNull: Bool { if case .null = self { return true }; return false }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var doubleValue: Double? { if case .number(let n) = self { return n.double }; return nil }
    public var intValue: Int? { if case .number(let n) = self { return n.int }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o }; return nil }

    /// The type as JSON Schema names it; `integer` for numbers with no fractional value.
    public var schemaTypeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let n): n.isInteger ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// The type with an article, for error messages ("expected a string, found an array").
    public var typeDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

// MARK: - Numbers

/// A JSON number as written. Values made in code are spelled the way the writer has always spelled them:
/// whole numbers below 10^15 without a fraction, others in Swift's shortest round-trip form.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// Valid JSON number text (RFC 8259 grammar), e.g. `12`, `-0.5`, `1e3`.
    public let text: String

    /// Wraps text the parser has already validated.
    init(validated text: String) { self.text = text }

    /// Checks `text` against the JSON number grammar.
    public init?(text: String) {
        let bytes = Array(text.utf8)
        let valid = bytes.withUnsafeBufferPointer { buffer in
            !buffer.isEmpty && NumberScanner.scan(buffer, from: 0) == buffer.count
        }
        guard valid else { return nil }
        self.text = text
    }

    public init(_ value: Int) { text = String(value) }

    /// `value` must be finite (JSON has no NaN or infinity); non-finite values become 0.
    public init(_ value: Double) {
        if !value.isFinite {
            text = "0"
        } else if value.rounded() == value && abs(value) < 1e15 {
            text = String(Int64(value))
        } else {
            text = "\(value)"
        }
    }

    /// The value as a Double (rounded to the nearest representable one).
    public var double: Double { Double(text) ?? 0 }

    /// The value as an Int when it is a whole number that fits (`3`, `3.0`, `3e2`), else nil.
    public var int: Int? {
        if let exact = Int(text) { return exact }
        let d = double
        guard d.rounded() == d, abs(d) < 9.007_199_254_740_992e15 else { return nil }
        return Int(d)
    }

    /// Whether the value has no fractional part.
    public var isInteger: Bool {
        if Int(text) != nil { return true }
        let d = double
        return d.isFinite && d.rounded() == d
    }

    public var description: String { text }

    /// Same spelling, or the same value as a Double (`1` == `1.0` == `1e0`).
    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        a.text == b.text || a.double == b.double
    }

    public func hash(into hasher: inout Hasher) {
        let d = double
        hasher.combine(d == 0 ? 0 : d)  // -0 and 0 are equal
    }
}

extension JSONNumber: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public init(integerLiteral value: Int) { self.init(value) }
    public init(floatLiteral value: Double) { self.init(value) }
}

// MARK: - Objects

/// Object members in document order, looked up by key. Keys are unique in parsed documents (the parser refuses
/// duplicates unless told otherwise); `subscript` set replaces a member in place or appends a new one.
public struct JSONObject: Sendable, Hashable, RandomAccessCollection {
    public typealias Member = (key: String, value: JSONValue)
    public private(set) var members: [Member]

    public init() { members = [] }
    public init(_ members: [Member]) { self.members = members }
    public init(_ members: [(String, JSONValue)]) { self.members = members.map { (key: $0.0, value: $0.1) } }
    /// A dictionary's entries, sorted by key (a dictionary has no order of its own).
    public init(sorting dictionary: [String: JSONValue]) {
        members = dictionary.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
    }

    public var startIndex: Int { members.startIndex }
    public var endIndex: Int { members.endIndex }
    public subscript(position: Int) -> Member { members[position] }

    public var keys: [String] { members.map(\.key) }
    public var values: [JSONValue] { members.map(\.value) }

    /// The first member named `key`.
    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            let index = members.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let i?, let value?): members[i].value = value
            case (let i?, nil): members.remove(at: i)
            case (nil, let value?): members.append((key, value))
            case (nil, nil): break
            }
        }
    }

    public mutating func append(_ key: String, _ value: JSONValue) { members.append((key, value)) }

    /// Removes the member `key` and returns its value.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let index = members.firstIndex(where: { $0.key == key }) else { return nil }
        return members.remove(at: index).value
    }

    /// Values transformed, keys and order kept.
    public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        JSONObject(try members.map { (key: $0.key, value: try transform($0.value)) })
    }

    /// The members sorted by key (stable output for golden files and stores).
    public var sortedByKey: JSONObject { JSONObject(members.sorted { $0.key < $1.key }) }

    /// Member-wise, in any order.
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.members.count == b.members.count else { return false }
        if a.members.count <= 16 {
            return a.members.allSatisfy { member in b[member.key] == member.value }
        }
        var index: [String: JSONValue] = [:]
        for member in b.members { index[member.key] = member.value }
        return a.members.allSatisfy { index[$0.key] == $0.value }
    }

    /// Independent of member order, like `==`.
    public func hash(into hasher: inout Hasher) {
        var combined = 0
        for member in members {
            var h = Hasher()
            h.combine(member.key)
            h.combine(member.value)
            combined = combined &+ h.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(combined)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Literal members in the order written; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        for (key, value) in elements { self[key] = value }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self.init(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// `null` for nil, else the string.
    public static func optional(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    /// `null` for nil, else the number.
    public static func optional(_ d: Double?) -> JSONValue { d.map { JSONValue($0) } ?? .null }
}
