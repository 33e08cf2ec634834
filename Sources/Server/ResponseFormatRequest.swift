import Engine
import Foundation
import JSON

/// `response_format` of a chat request → the engine's `ResponseFormat`.
///
/// Read from the body's order-preserving `JSONValue` (the constrained decoder writes object keys in the schema's
/// property order). `{"type":"text"}` (or none) means free text; `json_object` any JSON object; `json_schema` a
/// schema in the supported subset — anything outside it is a 400 naming the keyword.
enum ResponseFormatRequest {
    static func parse(_ format: JSONValue?, limits: SchemaLimits = .default) throws -> ResponseFormat? {
        guard let format else { return nil }
        if case .null = format { return nil }
        guard case .object(let members) = format else {
            throw ServerError.invalidRequest("'response_format' must be an object", param: "response_format")
        }
        func member(_ object: JSONObject, _ key: String) -> JSONValue? { object[key] }
        guard case .string(let type)? = member(members, "type") else {
            throw ServerError.invalidRequest("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"",
                                             param: "response_format.type")
        }
        switch type {
        case "text":
            return nil
        case "json_object":
            return .jsonObject
        case "json_schema":
            guard case .object(let spec)? = member(members, "json_schema") else {
                throw ServerError.invalidRequest("'response_format.json_schema' must be an object with 'name' and 'schema'",
                                                 param: "response_format.json_schema")
            }
            var name = "response"
            if case .string(let n)? = member(spec, "name") { name = n }
            var strict = false
            if case .bool(let s)? = member(spec, "strict") { strict = s }
            guard let schemaValue = member(spec, "schema") else {
                throw ServerError.invalidRequest("'response_format.json_schema.schema' is required", param: "response_format.json_schema.schema")
            }
            do {
                return .jsonSchema(name: name, schema: try JSONSchema.parse(schemaValue, limits: limits), strict: strict)
            } catch let error as SchemaError {
                throw APIError(schema: error, param: "response_format.json_schema.schema")
            }
        default:
            throw ServerError.invalidRequest("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", not \"\(type)\"",
                                             param: "response_format.type")
        }
    }
}
