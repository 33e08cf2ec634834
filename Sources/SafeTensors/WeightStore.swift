import Foundation
import JSON
#if canImport(Glibc)
import Glibc
#endif
import Tensors

/// All tensors of a model folder: a single `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`weight_map`: tensor name → shard file name).
public final class WeightStore: Sendable {
    public let directory: URL
    public let files: [SafeTensorsFile]
    private let locations: [String: (file: Int, info: TensorInfo)]

    public var names: [String] { locations.keys.sorted() }

    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        if fm.fileExists(atPath: index.path) {
            shardNames = try Self.shardNames(indexURL: index)
        } else if fm.fileExists(atPath: single.path) {
            shardNames = ["model.safetensors"]
        } else {
            let others = (try? fm.contentsOfDirectory(atPath: directory.path))?.filter { $0.hasSuffix(".safetensors") }.sorted() ?? []
            guard !others.isEmpty else { throw SafeTensorsError.noWeights(directory: directory.path) }
            shardNames = others
        }
        var files: [SafeTensorsFile] = []
        var locations: [String: (file: Int, info: TensorInfo)] = [:]
        for shard in shardNames {
            let file = try SafeTensorsFile(url: directory.appendingPathComponent(shard))
            for (name, info) in file.tensors { locations[name] = (files.count, info) }
            files.append(file)
        }
        self.files = files
        self.locations = locations
    }

    /// A store over already-opened files (e.g. a single reference file in tests).
    public init(files: [SafeTensorsFile]) {
        directory = files.first?.file.url.deletingLastPathComponent() ?? URL(fileURLWithPath: "/")
        var locations: [String: (file: Int, info: TensorInfo)] = [:]
        for (index, file) in files.enumerated() {
            for (name, info) in file.tensors { locations[name] = (index, info) }
        }
        self.files = files
        self.locations = locations
    }

    /// Shard file names from an index, refusing names that would leave the model folder.
    static func shardNames(indexURL: URL) throws -> [String] {
        let name = indexURL.lastPathComponent
        guard let data = try? Data(contentsOf: indexURL), let object = try? JSONParser.parse(data, limits: .files),
              case .object = object else {
            throw SafeTensorsError.malformedIndex(file: name, reason: "not a JSON object")
        }
        guard case .object(let map)? = object["weight_map"], map.values.allSatisfy({ $0.stringValue != nil }) else {
            throw SafeTensorsError.malformedIndex(file: name, reason: "missing 'weight_map' object of strings")
        }
        let shards = Set(map.values.compactMap(\.stringValue))
        for shard in shards where shard.contains("/") || shard.hasPrefix(".") || shard.isEmpty {
            throw SafeTensorsError.malformedIndex(file: name, reason: "shard name '\(shard)' is not a plain file name")
        }
        return shards.sorted()
    }

    public func info(_ name: String) -> TensorInfo? { locations[name]?.info }

    public func contains(_ name: String) -> Bool { locations[name] != nil }

    public func pointer(_ name: String) throws -> (TensorInfo, UnsafeRawPointer) {
        guard let location = locations[name] else { throw SafeTensorsError.missingTensor(name: name) }
        return (location.info, files[location.file].pointer(location.info))
    }

    /// Tells the kernel this process is done with a tensor's mapped pages (they leave the resident set;
    /// the page cache keeps them for the next load). Called after a tensor is converted at load.
    public func releasePages(_ name: String) {
        guard let (info, pointer) = try? self.pointer(name) else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: pointer) / page) * page
        let end = Int(bitPattern: pointer) + info.byteCount
        // Only whole pages inside this tensor: neighbours may still be needed.
        let first = start < Int(bitPattern: pointer) ? start + page : start
        let last = (end / page) * page
        guard last > first else { return }
        madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, MADV_DONTNEED)
    }

    /// The tensor converted to F32.
    public func floatTensor(_ name: String) throws -> Tensor {
        let (info, pointer) = try self.pointer(name)
        let tensor = Tensor(shape: info.shape)
        convertToFloat(info.dtype, source: pointer, destination: tensor.data, count: info.elementCount)
        return tensor
    }

    /// Elements `range` of the tensor (in row-major order) converted to F32 into `destination`: lets a
    /// large matrix be converted and quantized a slice at a time, without an F32 copy of all of it.
    public func convertElements(_ name: String, _ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        let (info, pointer) = try self.pointer(name)
        precondition(range.lowerBound >= 0 && range.upperBound <= info.elementCount, "elements \(range) outside \(name)")
        guard let size = info.dtype.elementSize else { throw SafeTensorsError.missingTensor(name: name) }
        convertToFloat(info.dtype, source: pointer + range.lowerBound * size, destination: destination, count: range.count)
    }

    /// Total parameter count over all tensors.
    public var parameterCount: Int { locations.values.reduce(0) { $0 + $1.info.elementCount } }
}
