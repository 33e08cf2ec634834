import JSON

/// Finding the model's JSON answer in free text.
public enum LenientJSON {
    /// The first JSON object in `text`: code fences and prose around it are ignored; each `{` is tried in turn
    /// until one starts a complete object. `nil` when there is none. Parsed with the request limits' depth, so a
    /// pathological answer cannot recurse deeply.
    public static func firstObject(in text: String) -> JSONValue? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> JSONValue? in
            for start in buffer.indices where buffer[start] == UInt8(ascii: "{") {
                if let (value, _) = try? JSONParser.parsePrefix(buffer, from: start, limits: JSONParser.Limits(maxDepth: 128)),
                   case .object = value {
                    return value
                }
            }
            return nil
        }
    }
}
