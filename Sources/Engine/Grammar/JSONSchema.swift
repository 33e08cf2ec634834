import Foundation
import JSON

/// What the answer must be: free text (nil), any JSON object, or JSON valid against a schema.
/// The OpenAI `response_format` values `{"type":"json_object"}` and
/// `{"type":"json_schema","json_schema":{"name":…,"schema":…,"strict":…}}` map onto the two cases.
public enum ResponseFormat: Sendable, Equatable {
    /// Any JSON object (`{"type":"json_object"}`).
    case jsonObject
    /// JSON valid against `schema`. Decoding is always constrained; `strict` is kept for the API's echo only.
    case jsonSchema(name: String, schema: JSONSchema, strict: Bool)

    /// The schema the output follows.
    public var schema: JSONSchema {
        switch self {
        case .jsonObject: return .anyObject
        case .jsonSchema(_, let schema, _): return schema
        }
    }
}

/// Why a schema cannot be used for constrained decoding. `path` is a JSON pointer into the schema ("#/properties/age").
public enum SchemaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The schema text is not JSON.
    case invalidJSON(String)
    /// A keyword outside the supported subset; never silently ignored.
    case unsupportedKeyword(String, path: String)
    /// A supported keyword with a value outside the subset (a `pattern` feature, an `additionalProperties` schema...).
    case unsupportedValue(keyword: String, path: String, reason: String)
    /// A schema that is malformed or admits no value (minimum > maximum, empty enum...).
    case invalidSchema(path: String, reason: String)
    case unresolvedReference(String, path: String)
    case recursiveReference(String, path: String)
    /// A work limit (`SchemaLimits`) refused the schema; `limit` is its name, `value` its setting.
    case tooComplex(limit: String, value: Int, path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidJSON(let why): return "The schema is not valid JSON: \(why)."
        case .unsupportedKeyword(let k, let path):
            return "JSON Schema keyword '\(k)' at \(path) is not supported by constrained decoding; remove it or rewrite the schema with the supported subset (see docs/structured-output.md)."
        case .unsupportedValue(let k, let path, let why): return "'\(k)' at \(path) is not supported: \(why)."
        case .invalidSchema(let path, let why): return "Invalid schema at \(path): \(why)."
        case .unresolvedReference(let ref, let path): return "$ref '\(ref)' at \(path) does not resolve to a schema in this document."
        case .recursiveReference(let ref, let path): return "$ref '\(ref)' at \(path) is recursive; recursive schemas are not supported."
        case .tooComplex(let limit, let value, let path, let why):
            return "The schema is too complex for constrained decoding at \(path): \(why) (limit \(limit) = \(value)); simplify it."
        }
    }
}

/// A JSON Schema reduced to the subset constrained decoding supports, with `$ref`s inlined.
/// Parse one with `JSONSchema.parse`; see docs/structured-output.md for the subset.
public struct JSONSchema: Sendable, Equatable {
    public indirect enum Node: Sendable, Hashable {
        /// Any JSON value (`{}` or `true`).
        case any
        /// An object. Only `properties` are generated, in schema order; required ones always, optional ones
        /// may be skipped. With no properties and `additionalProperties` not false, any object.
        case object(properties: [Property], additionalProperties: Bool)
        case array(items: Node, minItems: Int, maxItems: Int?)
        /// `pattern` is a regular expression of the supported subset (`format` date/time become patterns).
        case string(minLength: Int, maxLength: Int?, pattern: String?)
        case integer(minimum: Int?, maximum: Int?)
        case number(minimum: Decimal?, maximum: Decimal?, exclusiveMinimum: Bool, exclusiveMaximum: Bool)
        case boolean
        case null
        /// `enum` / `const`: one of these values, written compactly.
        case enumeration([JSONValue])
        case anyOf([Node])
    }

    public struct Property: Sendable, Hashable {
        public let name: String
        public let schema: Node
        public let required: Bool
        public init(name: String, schema: Node, required: Bool) {
            self.name = name
            self.schema = schema
            self.required = required
        }
    }

    public let root: Node
    /// The automata of the schema's patterns, compiled (within the limits) when it was read.
    let patterns: [String: PatternDFA]

    public init(root: Node) {
        self.root = root
        patterns = [:]
    }

    init(root: Node, patterns: [String: PatternDFA]) {
        self.root = root
        self.patterns = patterns
    }

    /// Any JSON object: `response_format: {"type":"json_object"}`.
    public static let anyObject = JSONSchema(root: .object(properties: [], additionalProperties: true))

    /// Parses schema text, keeping the document's property order.
    public static func parse(_ data: Data, limits: SchemaLimits = .default) throws -> JSONSchema {
        let value: JSONValue
        do { value = try JSONParser.parse(data) } catch { throw SchemaError.invalidJSON(error.description) }
        return try parse(value, limits: limits)
    }

    /// Reads a schema within `limits`. Throws `SchemaError` (`.tooComplex` names the limit that refused it), or
    /// `CancellationError` once `isCancelled` says so (it is polled every few thousand steps).
    public static func parse(_ value: JSONValue, limits: SchemaLimits = .default,
                             isCancelled: @escaping () -> Bool = { false }) throws -> JSONSchema {
        try parse(value, budget: CompileBudget(limits: limits, isCancelled: isCancelled))
    }

    static func parse(_ value: JSONValue, budget: CompileBudget) throws -> JSONSchema {
        var reader = SchemaReader(document: value, budget: budget)
        let root = try reader.node(value, path: "#", depth: 1)
        return JSONSchema(root: root, patterns: reader.patterns)
    }
}

// MARK: - Reading the subset

private struct SchemaReader {
    let document: JSONValue
    let budget: CompileBudget
    var references: [String] = []
    /// Nodes read so far (every `$ref` expansion counts again) and bytes of literal text.
    var nodes = 0
    var literalBytes = 0
    var patterns: [String: PatternDFA] = [:]

    init(document: JSONValue, budget: CompileBudget) {
        self.document = document
        self.budget = budget
    }

    var limits: SchemaLimits { budget.limits }

    func tooComplex(_ limit: String, _ value: Int, _ path: String, _ reason: String) -> SchemaError {
        .tooComplex(limit: limit, value: value, path: path, reason: reason)
    }

    mutating func addLiteral(_ bytes: Int, path: String) throws {
        literalBytes += bytes
        guard literalBytes <= limits.maxLiteralBytes else {
            throw tooComplex("max_literal_bytes", limits.maxLiteralBytes, path, "enum values and property names take more than \(limits.maxLiteralBytes) bytes")
        }
        try budget.spend(bytes, at: path)
    }

    /// Keywords that never change which values are valid; accepted and ignored.
    static let annotations: Set<String> = ["title", "description", "$schema", "$id", "$comment", "default",
                                           "examples", "deprecated", "readOnly", "writeOnly", "$defs", "definitions"]
    /// Keywords each type supports.
    static let typeKeywords: [String: Set<String>] = [
        "object": ["properties", "required", "additionalProperties"],
        "array": ["items", "minItems", "maxItems"],
        "string": ["minLength", "maxLength", "pattern", "format"],
        "integer": ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
        "number": ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
        "boolean": [],
        "null": [],
    ]
    static let typeOrder = ["object", "array", "string", "integer", "number", "boolean", "null"]

    mutating func node(_ value: JSONValue, path: String, depth: Int) throws -> JSONSchema.Node {
        nodes += 1
        guard nodes <= limits.maxNodes else {
            throw tooComplex("max_nodes", limits.maxNodes, path, "more than \(limits.maxNodes) schemas (counting every $ref expansion)")
        }
        guard depth <= limits.maxDepth else {
            throw tooComplex("max_depth", limits.maxDepth, path, "schemas nest deeper than \(limits.maxDepth) levels")
        }
        if case .object(let members) = value { try budget.spend(1 + members.count, at: path) } else { try budget.spend(1, at: path) }
        switch value {
        case .bool(true): return .any
        case .bool(false): throw SchemaError.invalidSchema(path: path, reason: "the schema `false` admits no value")
        case .object: break
        default: throw SchemaError.invalidSchema(path: path, reason: "a schema must be an object or a boolean")
        }
        guard case .object(let members) = value else { fatalError() }
        var keys: [String: JSONValue] = [:]
        for (k, v) in members {
            guard keys[k] == nil else { throw SchemaError.invalidSchema(path: path, reason: "duplicate keyword '\(k)'") }
            keys[k] = v
        }
        let constraining = members.map(\.key).filter { !Self.annotations.contains($0) }

        if let ref = keys["$ref"] {
            if let other = constraining.first(where: { $0 != "$ref" }) { throw SchemaError.unsupportedKeyword(other, path: path + " (beside $ref)") }
            guard case .string(let pointer) = ref else { throw SchemaError.invalidSchema(path: path, reason: "$ref must be a string") }
            guard !references.contains(pointer) else { throw SchemaError.recursiveReference(pointer, path: path) }
            guard let target = resolve(pointer) else { throw SchemaError.unresolvedReference(pointer, path: path) }
            references.append(pointer)
            defer { references.removeLast() }
            return try node(target, path: pointer, depth: depth + 1)
        }
        if let anyOf = keys["anyOf"] {
            if let other = constraining.first(where: { $0 != "anyOf" }) { throw SchemaError.unsupportedKeyword(other, path: path + " (beside anyOf)") }
            guard case .array(let options) = anyOf, !options.isEmpty else {
                throw SchemaError.invalidSchema(path: path, reason: "anyOf must be a non-empty array")
            }
            var branches: [JSONSchema.Node] = []
            for (i, option) in options.enumerated() { branches.append(try node(option, path: "\(path)/anyOf/\(i)", depth: depth + 1)) }
            return try merged(branches, path: path)
        }
        if keys["enum"] != nil || keys["const"] != nil {
            if let other = constraining.first(where: { !["enum", "const", "type"].contains($0) }) {
                throw SchemaError.unsupportedKeyword(other, path: path + " (beside enum/const)")
            }
            var values: [JSONValue]
            if let c = keys["const"] { values = [c] } else {
                guard case .array(let list) = keys["enum"]!, !list.isEmpty else {
                    throw SchemaError.invalidSchema(path: path, reason: "enum must be a non-empty array")
                }
                values = list
            }
            if keys["enum"] != nil && keys["const"] != nil {
                guard case .array(let list) = keys["enum"]!, list.contains(values[0]) else {
                    throw SchemaError.invalidSchema(path: path, reason: "const is not one of enum")
                }
            }
            if let types = try typeList(keys["type"], path: path) {
                for v in values where !types.contains(where: { Self.matches(v, type: $0) }) {
                    throw SchemaError.invalidSchema(path: path, reason: "enum value \(v.compactText) is not of type \(types.joined(separator: "/"))")
                }
            }
            // Duplicates merged by hashing (a linear search per value made 100k values take minutes).
            var seen = Set<JSONValue>()
            var unique: [JSONValue] = []
            for v in values where seen.insert(v).inserted { unique.append(v) }
            guard unique.count <= limits.maxEnumValues else {
                throw tooComplex("max_enum_values", limits.maxEnumValues, path, "\(unique.count) enum values")
            }
            for v in unique { try addLiteral(v.compactText.utf8.count, path: path) }
            return .enumeration(unique)
        }
        // Every remaining keyword must belong to the types in play.
        let known = Set(Self.typeKeywords.values.flatMap { $0 }).union(["type"])
        if let unknown = constraining.first(where: { !known.contains($0) }) {
            throw SchemaError.unsupportedKeyword(unknown, path: path)
        }
        let used = Set(constraining).subtracting(["type"])
        var types: [String]
        if let listed = try typeList(keys["type"], path: path) {
            types = listed
            for k in used where !types.contains(where: { Self.typeKeywords[$0]!.contains(k) }) {
                throw SchemaError.unsupportedKeyword(k, path: path + " (does not apply to type \(types.joined(separator: "/")))")
            }
        } else if used.isEmpty {
            return .any
        } else {
            types = Self.typeOrder.filter { used.isSubset(of: Self.typeKeywords[$0]!) }
            if types.contains("integer") { types.removeAll { $0 == "integer" } }  // number covers integer
            guard !types.isEmpty else {
                throw SchemaError.invalidSchema(path: path, reason: "keywords \(used.sorted()) mix several types; add \"type\"")
            }
        }
        var alternatives: [JSONSchema.Node] = []
        for type in types { alternatives.append(try typed(type, keys, path: path, depth: depth)) }
        return alternatives.count == 1 ? alternatives[0] : try merged(alternatives, path: path)
    }

    /// Alternatives with nested `anyOf`s flattened and identical ones merged (first occurrence kept, so the order
    /// stays the schema's), within `maxAnyOfBranches`.
    func merged(_ branches: [JSONSchema.Node], path: String) throws -> JSONSchema.Node {
        var seen = Set<JSONSchema.Node>()
        var merged: [JSONSchema.Node] = []
        for branch in branches {
            let flat: [JSONSchema.Node]
            if case .anyOf(let inner) = branch { flat = inner } else { flat = [branch] }
            for alternative in flat where seen.insert(alternative).inserted { merged.append(alternative) }
        }
        if merged.contains(.any) { return .any }
        guard merged.count <= limits.maxAnyOfBranches else {
            throw tooComplex("max_any_of_branches", limits.maxAnyOfBranches, path, "\(merged.count) different alternatives")
        }
        try budget.spend(branches.count, at: path)
        return merged.count == 1 ? merged[0] : .anyOf(merged)
    }

    func typeList(_ value: JSONValue?, path: String) throws -> [String]? {
        guard let value else { return nil }
        var names: [String] = []
        switch value {
        case .string(let s): names = [s]
        case .array(let a):
            for item in a {
                guard case .string(let s) = item else { throw SchemaError.invalidSchema(path: path, reason: "type must be a string or an array of strings") }
                names.append(s)
            }
        default: throw SchemaError.invalidSchema(path: path, reason: "type must be a string or an array of strings")
        }
        guard !names.isEmpty else { throw SchemaError.invalidSchema(path: path, reason: "type is an empty array") }
        for n in names where Self.typeKeywords[n] == nil {
            throw SchemaError.unsupportedValue(keyword: "type", path: path, reason: "unknown type '\(n)'")
        }
        return names
    }

    static func matches(_ v: JSONValue, type: String) -> Bool {
        switch (v, type) {
        case (.object, "object"), (.array, "array"), (.string, "string"), (.bool, "boolean"), (.null, "null"), (.number, "number"): return true
        case (.number(let n), "integer"): return n.isInteger
        default: return false
        }
    }

    func resolve(_ pointer: String) -> JSONValue? {
        guard pointer.hasPrefix("#") else { return nil }
        var current = document
        for raw in pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: true) {
            let part = raw.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            let decoded = part.removingPercentEncoding ?? part
            switch current {
            case .object: guard let next = current[decoded] else { return nil }; current = next
            case .array(let a): guard let i = Int(decoded), a.indices.contains(i) else { return nil }; current = a[i]
            default: return nil
            }
        }
        return current
    }

    func count(_ keys: [String: JSONValue], _ k: String, path: String) throws -> Int? {
        guard let v = keys[k] else { return nil }
        guard case .number(let n) = v, case let d = n.double, d >= 0, d == d.rounded(), d < 1e9 else {
            throw SchemaError.invalidSchema(path: path, reason: "\(k) must be a non-negative integer")
        }
        return Int(d)
    }

    func decimal(_ keys: [String: JSONValue], _ k: String, path: String) throws -> Decimal? {
        guard let v = keys[k] else { return nil }
        guard case .number(let n) = v, let d = Decimal(string: n.text, locale: Locale(identifier: "en_US_POSIX")), !d.isNaN else {
            if case .bool = v { throw SchemaError.unsupportedValue(keyword: k, path: path, reason: "boolean form of \(k) (draft 4); use a number") }
            throw SchemaError.invalidSchema(path: path, reason: "\(k) must be a number")
        }
        // Beyond what constrained decoding writes (15 integer digits): clamp, so the bound still holds.
        let limit = Decimal(string: "1e16")!
        return d > limit ? limit : (d < -limit ? -limit : d)
    }

    mutating func typed(_ type: String, _ keys: [String: JSONValue], path: String, depth: Int) throws -> JSONSchema.Node {
        switch type {
        case "boolean": return .boolean
        case "null": return .null
        case "object":
            var properties: [JSONSchema.Property] = []
            var required: [String] = []
            if let r = keys["required"] {
                guard case .array(let items) = r else { throw SchemaError.invalidSchema(path: path, reason: "required must be an array of strings") }
                for item in items {
                    guard case .string(let s) = item else { throw SchemaError.invalidSchema(path: path, reason: "required must be an array of strings") }
                    required.append(s)
                }
            }
            var additional = true
            switch keys["additionalProperties"] {
            case nil: break
            case .bool(let b)?: additional = b
            case .object(let m)? where m.isEmpty: break
            default: throw SchemaError.unsupportedValue(keyword: "additionalProperties", path: path, reason: "only true or false are supported, not a schema")
            }
            var seen = Set<String>()
            if let p = keys["properties"] {
                guard case .object(let members) = p else { throw SchemaError.invalidSchema(path: path, reason: "properties must be an object") }
                let requiredSet = Set(required)
                for (name, sub) in members {
                    guard seen.insert(name).inserted else { throw SchemaError.invalidSchema(path: path, reason: "duplicate property '\(name)'") }
                    try addLiteral(name.utf8.count + 3, path: path)
                    properties.append(.init(name: name, schema: try node(sub, path: "\(path)/properties/\(name)", depth: depth + 1),
                                            required: requiredSet.contains(name)))
                }
            }
            for name in required where !seen.contains(name) {
                throw SchemaError.unsupportedValue(keyword: "required", path: path, reason: "required property '\(name)' has no schema in properties")
            }
            return .object(properties: properties, additionalProperties: additional)
        case "array":
            var items = JSONSchema.Node.any
            if let i = keys["items"] {
                if case .array = i { throw SchemaError.unsupportedValue(keyword: "items", path: path, reason: "tuple form (an array of schemas)") }
                items = try node(i, path: path + "/items", depth: depth + 1)
            }
            let minItems = try count(keys, "minItems", path: path) ?? 0
            let maxItems = try count(keys, "maxItems", path: path)
            if let maxItems, maxItems < minItems { throw SchemaError.invalidSchema(path: path, reason: "minItems > maxItems") }
            return .array(items: items, minItems: minItems, maxItems: maxItems)
        case "string":
            let minLength = try count(keys, "minLength", path: path) ?? 0
            let maxLength = try count(keys, "maxLength", path: path)
            if let maxLength, maxLength < minLength { throw SchemaError.invalidSchema(path: path, reason: "minLength > maxLength") }
            var pattern: String?
            if let p = keys["pattern"] {
                guard case .string(let s) = p else { throw SchemaError.invalidSchema(path: path, reason: "pattern must be a string") }
                pattern = s
            }
            if let f = keys["format"] {
                guard case .string(let name) = f, let formatPattern = StringFormat.patterns[name] else {
                    throw SchemaError.unsupportedValue(keyword: "format", path: path, reason: "only \(StringFormat.patterns.keys.sorted().joined(separator: ", ")) are supported; use pattern")
                }
                guard pattern == nil else { throw SchemaError.unsupportedValue(keyword: "format", path: path, reason: "format together with pattern") }
                pattern = formatPattern
            }
            if let pattern {
                guard minLength == 0 && maxLength == nil else {
                    throw SchemaError.unsupportedValue(keyword: "pattern", path: path, reason: "pattern (or format) together with minLength/maxLength; put the length into the pattern")
                }
                if patterns[pattern] == nil {
                    guard pattern.utf8.count <= limits.maxPatternBytes else {
                        throw tooComplex("max_pattern_bytes", limits.maxPatternBytes, path, "a pattern of \(pattern.utf8.count) bytes")
                    }
                    do { patterns[pattern] = try PatternDFA(pattern, budget: budget, path: path) } catch let error as PatternError {
                        throw SchemaError.unsupportedValue(keyword: "pattern", path: path, reason: error.reason)
                    }
                }
            }
            return .string(minLength: minLength, maxLength: maxLength, pattern: pattern)
        case "integer":
            var lo = try decimal(keys, "minimum", path: path), hi = try decimal(keys, "maximum", path: path)
            if let x = try decimal(keys, "exclusiveMinimum", path: path) { lo = max(lo ?? x, Self.floor(x) + 1) }
            if let x = try decimal(keys, "exclusiveMaximum", path: path) { hi = min(hi ?? x, Self.ceil(x) - 1) }
            let minimum = lo.map { Self.ceil($0) }, maximum = hi.map { Self.floor($0) }
            if let minimum, let maximum, minimum > maximum { throw SchemaError.invalidSchema(path: path, reason: "no integer between the bounds") }
            return .integer(minimum: minimum.map { NSDecimalNumber(decimal: $0).intValue },
                            maximum: maximum.map { NSDecimalNumber(decimal: $0).intValue })
        default:  // number
            var lo = try decimal(keys, "minimum", path: path), hi = try decimal(keys, "maximum", path: path)
            var exclusiveMin = false, exclusiveMax = false
            if let x = try decimal(keys, "exclusiveMinimum", path: path), lo == nil || x >= lo! { lo = x; exclusiveMin = true }
            if let x = try decimal(keys, "exclusiveMaximum", path: path), hi == nil || x <= hi! { hi = x; exclusiveMax = true }
            if let lo, let hi, lo > hi || (lo == hi && (exclusiveMin || exclusiveMax)) {
                throw SchemaError.invalidSchema(path: path, reason: "no number between the bounds")
            }
            return .number(minimum: lo, maximum: hi, exclusiveMinimum: exclusiveMin, exclusiveMaximum: exclusiveMax)
        }
    }

    static func floor(_ d: Decimal) -> Decimal { rounded(d, .down) }
    static func ceil(_ d: Decimal) -> Decimal { rounded(d, .up) }
    static func rounded(_ d: Decimal, _ mode: NSDecimalNumber.RoundingMode) -> Decimal {
        var input = d, output = Decimal()
        NSDecimalRound(&output, &input, 0, mode)
        return output
    }
}

/// `format` values that become patterns (RFC 3339 full-date, partial-time, date-time).
enum StringFormat {
    static let date = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    static let time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
    static let patterns: [String: String] = [
        "date": date,
        "time": time,
        "date-time": date + "T" + time,
    ]
}
