import Foundation
import JSON
import Tensors

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Offset of the first byte from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header mapping
/// tensor names to dtype/shape/data offsets, then the raw little-endian data.
///
/// The header is untrusted: its length is bounded before anything is allocated, every offset is
/// checked against the file size and against the byte count its dtype and shape imply (with
/// overflow-checked arithmetic), so a truncated or hostile file is an error, never a crash.
public final class SafeTensorsFile: Sendable {
    /// Largest header accepted. The real 2B checkpoint's header is ~90 KB; 100 MB is far beyond any real one.
    public static let maxHeaderBytes = 100 * 1024 * 1024

    public let file: MappedFile
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]

    public convenience init(url: URL) throws {
        try self.init(file: MappedFile(url: url))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let name = file.url.lastPathComponent
        guard file.size >= 8, let base = file.base else {
            throw SafeTensorsError.fileTooSmall(file: name, size: file.size)
        }
        let headerLength = base.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw SafeTensorsError.headerTooLarge(file: name, length: headerLength, limit: Self.maxHeaderBytes)
        }
        guard headerLength <= UInt64(file.size - 8) else {
            throw SafeTensorsError.headerOutOfBounds(file: name, length: headerLength, fileSize: file.size)
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = file.size - dataStart
        // The header is read in place, with the JSON module's limits (a shallow document of tensor entries).
        let json: JSONValue
        do {
            json = try JSONParser.parse(UnsafeBufferPointer(start: (base + 8).assumingMemoryBound(to: UInt8.self), count: Int(headerLength)),
                                        limits: JSONParser.Limits(maxDepth: 16))
        } catch {
            throw SafeTensorsError.malformedHeader(file: name, reason: "not valid JSON")
        }
        guard case .object(let object) = json else {
            throw SafeTensorsError.malformedHeader(file: name, reason: "top level is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in object {
            if key == "__metadata__" {
                if case .object(let map) = value {
                    for (k, v) in map { metadata[k] = v.stringValue ?? v.compactText }
                }
                continue
            }
            tensors[key] = try Self.parseEntry(key, value, file: name, dataStart: dataStart, dataSize: dataSize)
        }
        try Self.checkNoOverlap(Array(tensors.values), file: name)
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func parseEntry(_ key: String, _ value: JSONValue, file: String, dataStart: Int, dataSize: Int) throws -> TensorInfo {
        guard case .object(let entry) = value else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "entry '\(key)' is not an object")
        }
        guard let dtypeName = entry["dtype"]?.stringValue else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "entry '\(key)' has no dtype")
        }
        let dtype: DType
        switch dtypeName {
        case "F32": dtype = .f32
        case "F16": dtype = .f16
        case "BF16": dtype = .bf16
        case "I32": dtype = .i32
        case "I64": dtype = .i64
        case "U8": dtype = .u8
        default: throw SafeTensorsError.unsupportedDType(file: file, tensor: key, dtype: dtypeName)
        }
        guard let shapeValues = entry["shape"]?.arrayValue else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "entry '\(key)' has no shape")
        }
        var shape: [Int] = []
        var elements = 1
        for dimension in shapeValues {
            guard let dim = dimension.intValue, dim >= 0 else {
                throw SafeTensorsError.malformedHeader(file: file, reason: "entry '\(key)' has a bad shape")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw SafeTensorsError.badOffsets(file: file, tensor: key, reason: "shape overflows") }
            elements = product
            shape.append(dim)
        }
        guard let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue
        else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "entry '\(key)' has no valid data_offsets")
        }
        guard begin >= 0, end >= begin, end <= dataSize else {
            throw SafeTensorsError.badOffsets(file: file, tensor: key, reason: "[\(begin), \(end)) is outside the \(dataSize)-byte data section")
        }
        let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.elementSize!)
        guard !overflow, expected == end - begin else {
            throw SafeTensorsError.badOffsets(file: file, tensor: key, reason: "\(end - begin) bytes for shape \(shape) of \(dtypeName)")
        }
        return TensorInfo(name: key, dtype: dtype, shape: shape, fileOffset: dataStart + begin, byteCount: end - begin)
    }

    private static func checkNoOverlap(_ infos: [TensorInfo], file: String) throws {
        let sorted = infos.filter { $0.byteCount > 0 }.sorted { $0.fileOffset < $1.fileOffset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.fileOffset + a.byteCount > b.fileOffset {
            throw SafeTensorsError.badOffsets(file: file, tensor: b.name, reason: "overlaps '\(a.name)'")
        }
    }

    /// Raw bytes of a tensor inside the mapping.
    public func pointer(_ info: TensorInfo) -> UnsafeRawPointer {
        file.base! + info.fileOffset
    }
}
