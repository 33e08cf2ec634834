import Foundation

/// Everything that can go wrong while loading a tokenizer. Encoding and decoding never fail.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A required file does not exist or cannot be read.
    case fileNotFound(path: String)
    /// The bytes are not valid JSON; `offset` is the byte where parsing stopped.
    case malformedJSON(file: String, offset: Int, reason: String)
    /// The JSON is valid but a key is missing or has the wrong type; `keyPath` like `model.vocab["abc"]`.
    case invalidValue(file: String, keyPath: String, expected: String)
    /// `model.type` is not `BPE`, or the BPE uses a feature this engine does not implement.
    case unsupportedModel(String)
    /// A `normalizer` other than NFC (alone or in a Sequence).
    case unsupportedNormalizer(String)
    /// A `pre_tokenizer` other than the Qwen split regex followed by ByteLevel.
    case unsupportedPreTokenizer(String)
    /// A `decoder` other than ByteLevel.
    case unsupportedDecoder(String)
    /// An added token with options this engine does not implement (lstrip, rstrip, single_word).
    case unsupportedAddedToken(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "tokenizer file not found: \(path)"
        case .malformedJSON(let file, let offset, let reason):
            return "\(file) is not valid JSON (byte \(offset)): \(reason)"
        case .invalidValue(let file, let keyPath, let expected):
            return "\(file): \(keyPath) should be \(expected)"
        case .unsupportedModel(let what):
            return "unsupported tokenizer model: \(what) (only byte-level BPE is implemented)"
        case .unsupportedNormalizer(let what):
            return "unsupported normalizer: \(what) (only NFC is implemented)"
        case .unsupportedPreTokenizer(let what):
            return "unsupported pre-tokenizer: \(what) (only the Qwen split regex + ByteLevel is implemented)"
        case .unsupportedDecoder(let what):
            return "unsupported decoder: \(what) (only ByteLevel is implemented)"
        case .unsupportedAddedToken(let what):
            return "unsupported added token: \(what)"
        }
    }
}
