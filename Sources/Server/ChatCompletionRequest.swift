import Foundation

/// `POST /v1/chat/completions` as OpenAI's SDKs send it. Unknown fields are ignored; a field of the wrong
/// type fails decoding, and `decodeRequest` names its path. `max_pixels` / `min_pixels` are PostLens extensions.
struct ChatCompletionRequest: Decodable, Sendable {
    var model: String?
    var messages: [Message]
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var topK: Int?
    var minP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var repetitionPenalty: Double?
    var seed: Int64?
    var stop: StopList?
    var n: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var logprobs: Bool?
    var topLogprobs: Int?
    var user: String?
    var maxPixels: Int?
    var minPixels: Int?

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, seed, stop, n, stream, logprobs, user
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens"
        case topP = "top_p", topK = "top_k", minP = "min_p"
        case presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty", streamOptions = "stream_options", topLogprobs = "top_logprobs"
        case maxPixels = "max_pixels", minPixels = "min_pixels"
    }

    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    /// `stop`: one string or an array of strings.
    struct StopList: Decodable, Sendable {
        var values: [String]
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) {
                values = [one]
            } else if let many = try? container.decode([String].self) {
                values = many
            } else {
                throw DecodingError.typeMismatch([String].self, .init(
                    codingPath: decoder.codingPath, debugDescription: "expected a string or an array of strings"))
            }
        }
    }

    struct Message: Decodable, Sendable {
        var role: Role
        var content: Content?
        var name: String?
    }

    /// OpenAI roles; `developer` is the newer name of `system`.
    enum Role: String, Decodable, Sendable {
        case system, developer, user, assistant, tool
    }

    /// Message content: a string, or an array of text and image parts.
    enum Content: Decodable, Sendable {
        case text(String)
        case parts([Part])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
                return
            }
            do {
                self = .parts(try container.decode([Part].self))
            } catch DecodingError.typeMismatch(_, let context) where context.codingPath.count == decoder.codingPath.count {
                throw DecodingError.typeMismatch([Part].self, .init(
                    codingPath: decoder.codingPath, debugDescription: "expected a string or an array of content parts"))
            }
        }
    }

    /// `{"type": "text", "text": ...}` or `{"type": "image_url", "image_url": {"url": ..., "detail": ...}}`.
    struct Part: Decodable, Sendable {
        var type: String
        var text: String?
        var imageURL: ImageURL?
        enum CodingKeys: String, CodingKey {
            case type, text
            case imageURL = "image_url"
        }
    }

    struct ImageURL: Decodable, Sendable {
        var url: String
        var detail: Detail?

        init(from decoder: any Decoder) throws {
            // Some clients send `"image_url": "data:..."` (the older shape); accept it.
            if let container = try? decoder.singleValueContainer(), let url = try? container.decode(String.self) {
                self.url = url
                detail = nil
                return
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            url = try container.decode(String.self, forKey: .url)
            detail = try container.decodeIfPresent(Detail.self, forKey: .detail)
        }
        enum CodingKeys: String, CodingKey { case url, detail }
    }

    enum Detail: String, Decodable, Sendable {
        case low, high, auto
    }
}

/// Decodes a request body, turning every decoding failure into a 400 that names the field.
func decodeRequest<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
    guard String(validating: data, as: UTF8.self) != nil else { throw ServerError.bodyNotUTF8 }
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as DecodingError {
        throw ServerError(decoding: error)
    }
}

extension ServerError {
    init(decoding error: DecodingError) {
        switch error {
        case let .typeMismatch(type, context):
            let path = fieldPath(context.codingPath)
            let expected = context.debugDescription.hasPrefix("expected") ? context.debugDescription : "expected \(typeName(type))"
            self = .invalidRequest("invalid type for '\(path)': \(expected)", param: path)
        case let .valueNotFound(type, context):
            let path = fieldPath(context.codingPath)
            self = .invalidRequest("'\(path)' must not be null: expected \(typeName(type))", param: path)
        case let .keyNotFound(key, context):
            let path = fieldPath(context.codingPath + [key])
            self = .invalidRequest("missing required field '\(path)'", param: path)
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                self = .invalidRequest("the request body is not valid JSON; send a JSON object with 'messages'", param: nil)
            } else {
                let path = fieldPath(context.codingPath)
                self = .invalidRequest("invalid value for '\(path)': \(context.debugDescription)", param: path)
            }
        @unknown default:
            self = .invalidRequest("invalid request body", param: nil)
        }
    }
}

/// `messages[0].content[1].image_url.url` from a coding path.
func fieldPath(_ path: [any CodingKey]) -> String {
    var out = ""
    for key in path {
        if let index = key.intValue {
            out += "[\(index)]"
        } else {
            out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return out.isEmpty ? "(body)" : out
}

private func typeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: return "a string"
    case is Bool.Type: return "a boolean"
    case is Int.Type, is Int64.Type: return "an integer"
    case is Double.Type: return "a number"
    default:
        let name = "\(type)"
        if name.hasPrefix("Array") { return "an array" }
        if name.hasPrefix("Dictionary") { return "an object" }
        return "an object"
    }
}
