/// A model folder file that is missing, unreadable or lacks a field the engine needs.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case unreadable(file: String, reason: String)
    case missingKey(file: String, key: String)
    case wrongType(file: String, key: String, expected: String)
    case invalidValue(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "\(path) does not exist; a model folder needs config.json, model.safetensors (or an index), tokenizer.json and preprocessor_config.json"
        case .unreadable(let file, let reason): return "\(file): \(reason)"
        case .missingKey(let file, let key): return "\(file): missing required key '\(key)'"
        case .wrongType(let file, let key, let expected): return "\(file): key '\(key)' should be \(expected)"
        case .invalidValue(let file, let key, let reason): return "\(file): key '\(key)': \(reason)"
        }
    }
}
