import JSON

/// A validator for the JSON Schema subset the task schemas use: `type` (a name or a list of names),
/// `properties`, `required`, `additionalProperties: false`, `enum`, `minimum`, `maximum`, `items`,
/// `minItems`, `maxItems`, `minLength`, `maxLength`. Unknown keywords are ignored. Used until the engine constrains decoding
/// to the schema, and afterwards as a cheap double check.
public enum SchemaValidator {
    /// Every violation, as "path: problem"; empty when `value` conforms.
    public static func validate(_ value: JSONValue, against schema: JSONValue, path: String = "$") -> [String] {
        guard case .object(let s) = schema else { return [] }
        var problems: [String] = []

        if let type = s["type"] {
            let allowed: [String] = type.stringValue.map { [$0] } ?? (type.arrayValue ?? []).compactMap(\.stringValue)
            if !allowed.isEmpty && !allowed.contains(where: { matches(value, type: $0) }) {
                return ["\(path): expected \(allowed.joined(separator: " or ")), got \(value.schemaTypeName)"]
            }
        }
        if let options = s["enum"]?.arrayValue, !options.contains(value) {
            let listed = options.map(\.sortedText).joined(separator: ", ")
            problems.append("\(path): \(value.sortedText) is not one of \(listed)")
        }
        if let d = value.doubleValue {
            if let minimum = s["minimum"]?.doubleValue, d < minimum { problems.append("\(path): \(JSONNumber(d).text) is below the minimum \(JSONNumber(minimum).text)") }
            if let maximum = s["maximum"]?.doubleValue, d > maximum { problems.append("\(path): \(JSONNumber(d).text) is above the maximum \(JSONNumber(maximum).text)") }
        }
        if case .string(let text) = value {
            // Lengths in characters as JSON Schema counts them (Unicode code points).
            let length = text.unicodeScalars.count
            if let minLength = s["minLength"]?.doubleValue, Double(length) < minLength { problems.append("\(path): shorter than \(Int(minLength)) characters") }
            if let maxLength = s["maxLength"]?.doubleValue, Double(length) > maxLength { problems.append("\(path): longer than \(Int(maxLength)) characters") }
        }
        if case .object(let o) = value {
            for key in (s["required"]?.arrayValue ?? []).compactMap(\.stringValue) where o[key] == nil {
                problems.append("\(path): missing required property \"\(key)\"")
            }
            let properties = s["properties"]?.objectValue ?? [:]
            for key in o.keys.sorted() {
                if let sub = properties[key] {
                    problems += validate(o[key]!, against: sub, path: "\(path).\(key)")
                } else if s["additionalProperties"] == .bool(false) {
                    problems.append("\(path): unexpected property \"\(key)\"")
                } else if let sub = s["additionalProperties"], case .object = sub {
                    problems += validate(o[key]!, against: sub, path: "\(path).\(key)")
                }
            }
        }
        if case .array(let a) = value {
            if let minItems = s["minItems"]?.doubleValue, Double(a.count) < minItems { problems.append("\(path): fewer than \(Int(minItems)) items") }
            if let maxItems = s["maxItems"]?.doubleValue, Double(a.count) > maxItems { problems.append("\(path): more than \(Int(maxItems)) items") }
            if let items = s["items"] {
                for (i, element) in a.enumerated() { problems += validate(element, against: items, path: "\(path)[\(i)]") }
            }
        }
        return problems
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object), ("number", .number): true
        case ("integer", .number(let n)): n.isInteger
        default: false
        }
    }
}
