import Foundation
import JSON

/// Request bodies are parsed once, here, with limits that bound what a body may cost beyond its size: nesting depth
/// (the parser recurses) and the number of values (each costs tens of bytes, so a 40 MB `[0,0,…]` would otherwise
/// take half a gigabyte). Every handler then reads the parsed value; nothing parses the same bytes again.
enum RequestJSON {
    /// Parses a request body. Errors are 400s that say what is wrong and, for limits, which limit.
    static func parse(_ data: Data, limits: JSONParser.Limits, what: String = "the request body") throws -> JSONValue {
        do {
            return try JSONParser.parse(data, limits: limits)
        } catch {
            switch error.kind {
            case .invalidUTF8:
                throw ServerError.bodyNotUTF8
            case .tooDeep, .tooManyValues, .tooLarge:
                throw ServerError.invalidRequest("\(what) is refused: \(error.reason) (a server limit; see docs/api.md)", param: nil)
            case .syntax, .duplicateKey:
                throw ServerError.invalidRequest("\(what) is not valid JSON: \(error.description)", param: nil)
            }
        }
    }
}

extension ServerConfiguration {
    /// The limits every JSON request body is parsed with.
    var requestJSONLimits: JSONParser.Limits {
        JSONParser.Limits(maxDepth: maxJSONDepth, maxBytes: maxBodyBytes, maxValues: maxJSONValues)
    }
}
