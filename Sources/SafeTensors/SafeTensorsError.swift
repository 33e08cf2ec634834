/// What can be wrong with a safetensors file or a sharded checkpoint. Every case names the file.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case fileTooSmall(file: String, size: Int)
    case headerTooLarge(file: String, length: UInt64, limit: Int)
    case headerOutOfBounds(file: String, length: UInt64, fileSize: Int)
    case malformedHeader(file: String, reason: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    case badOffsets(file: String, tensor: String, reason: String)
    case missingTensor(name: String)
    case malformedIndex(file: String, reason: String)
    case noWeights(directory: String)

    public var description: String {
        switch self {
        case .fileTooSmall(let file, let size):
            return "\(file): \(size) bytes is too small to be a safetensors file (needs an 8-byte header length)"
        case .headerTooLarge(let file, let length, let limit):
            return "\(file): header claims \(length) bytes, more than the \(limit)-byte limit; the file is corrupt or not safetensors"
        case .headerOutOfBounds(let file, let length, let size):
            return "\(file): header claims \(length) bytes but the file has only \(size); the file is truncated"
        case .malformedHeader(let file, let reason):
            return "\(file): malformed safetensors header: \(reason)"
        case .unsupportedDType(let file, let tensor, let dtype):
            return "\(file): tensor '\(tensor)' has unsupported dtype \(dtype) (supported: F32, F16, BF16, I32, I64, U8)"
        case .badOffsets(let file, let tensor, let reason):
            return "\(file): tensor '\(tensor)' has bad data offsets: \(reason)"
        case .missingTensor(let name):
            return "checkpoint has no tensor named '\(name)'"
        case .malformedIndex(let file, let reason):
            return "\(file): malformed shard index: \(reason)"
        case .noWeights(let directory):
            return "\(directory) has neither model.safetensors nor model.safetensors.index.json"
        }
    }
}
