import Foundation
import JSON

extension JSONValue {
    /// The schema with its properties in answer order, for constrained decoding.
    ///
    /// The constrained decoder writes keys in the schema's property
    /// order, and the answers work best in "look, extract the text, then reason" order. Every task
    /// schema lists `required` in exactly that order, so properties are ordered by their position in
    /// `required` (others after, alphabetically).
    public var orderedSchemaValue: JSONValue {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n): return .number(n)
        case .string(let s): return .string(s)
        case .array(let a): return .array(a.map(\.orderedSchemaValue))
        case .object(let o):
            let required = o["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let keys = o.keys.sorted()
            return .object(JSONObject(keys.map { key -> (String, JSONValue) in
                guard key == "properties", case .object(let properties)? = o[key] else { return (key, o[key]!.orderedSchemaValue) }
                let rank = Dictionary(uniqueKeysWithValues: required.enumerated().map { ($1, $0) })
                let ordered = properties.keys.sorted { (rank[$0] ?? Int.max, $0) < (rank[$1] ?? Int.max, $1) }
                return (key, .object(JSONObject(ordered.map { ($0, properties[$0]!.orderedSchemaValue) })))
            }))
        }
    }
}
