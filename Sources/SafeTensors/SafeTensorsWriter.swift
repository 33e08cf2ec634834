import Foundation
import JSON
import Tensors

/// Writes a safetensors file tensor by tensor, streaming: the data of each tensor is produced by a
/// closure into a reusable buffer, so multi-gigabyte random checkpoints never sit in memory whole.
public struct SafeTensorsWriter {
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Fills exactly `byteCount` bytes.
        public let fill: (UnsafeMutableRawBufferPointer) -> Void
        public init(name: String, dtype: DType, shape: [Int], fill: @escaping (UnsafeMutableRawBufferPointer) -> Void) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.fill = fill
        }
        public var byteCount: Int { shape.reduce(1, *) * dtype.elementSize! }
    }

    public static func write(_ entries: [Entry], metadata: [String: String] = ["format": "pt"], to url: URL) throws {
        var header = JSONObject(sorting: ["__metadata__": .object(JSONObject(sorting: metadata.mapValues { JSONValue($0) }))])
        var offset = 0
        for entry in entries {
            let name: String
            switch entry.dtype {
            case .f32: name = "F32"
            case .f16: name = "F16"
            case .bf16: name = "BF16"
            case .i32: name = "I32"
            case .i64: name = "I64"
            case .u8: name = "U8"
            case .q8, .q4: preconditionFailure("safetensors has no block-quantized dtype")
            }
            header[entry.name] = ["dtype": .string(name), "shape": .array(entry.shape.map { JSONValue($0) }),
                                  "data_offsets": [JSONValue(offset), JSONValue(offset + entry.byteCount)]]
            offset += entry.byteCount
        }
        var json = Data(JSONWriter(sortedKeys: true).string(.object(header)).utf8)
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces so data starts 8-byte aligned
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var length = UInt64(json.count).littleEndian
        try handle.write(contentsOf: Data(bytes: &length, count: 8))
        try handle.write(contentsOf: json)
        for entry in entries {
            var buffer = Data(count: entry.byteCount)
            buffer.withUnsafeMutableBytes { entry.fill($0) }
            try handle.write(contentsOf: buffer)
        }
    }

    /// Convenience: F32 values stored as the given dtype (f32, bf16 or f16).
    public static func floatEntry(_ name: String, shape: [Int], values: [Float], as dtype: DType = .f32) -> Entry {
        Entry(name: name, dtype: dtype, shape: shape) { buffer in
            switch dtype {
            case .f32:
                values.withUnsafeBytes { buffer.copyMemory(from: $0) }
            case .bf16:
                let out = buffer.bindMemory(to: UInt16.self)
                for (i, v) in values.enumerated() { out[i] = floatToBF16(v) }
            case .f16:
                let out = buffer.bindMemory(to: UInt16.self)
                for (i, v) in values.enumerated() { out[i] = Float16(v).bitPattern }
            default:
                preconditionFailure("floatEntry stores floats only")
            }
        }
    }
}
