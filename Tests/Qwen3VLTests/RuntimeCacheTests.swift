import Foundation
import Testing
import Kernels
import Tensors
@testable import Qwen3VL

/// The runtime-format weight cache on a copy of the tiny fixture model (so its files can be edited):
/// reuse without conversion, bitwise-identical outputs, invalidation by a changed source, detection
/// of a truncated file, and loading through an unusable cache folder.
@Suite struct RuntimeCacheTests {
    /// A fresh temporary folder with a copy of the tiny model and an empty cache folder.
    struct Sandbox {
        let root: URL
        var model: URL { root.appendingPathComponent("model") }
        var options: RuntimeCacheOptions { RuntimeCacheOptions(directory: root.appendingPathComponent("cache/runtime")) }

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-runtime-cache-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let source = Fixtures.url("models/tiny")
            try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: source.path) where name != "reference" {
                try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: model.appendingPathComponent(name))
            }
        }

        func load(_ format: WeightFormat = .q8, options: RuntimeCacheOptions?? = .none) throws -> Qwen3VLModel {
            try Qwen3VLModel(directory: model, format: format, runtimeCache: options ?? self.options)
        }

        func cacheFiles() throws -> [URL] {
            let folder = options.directory
            guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
            return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "plw" }
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    /// Logits of a short text prompt at every position, plus the vision features of a small image.
    static func outputs(_ model: Qwen3VLModel) throws -> [Float] {
        let ids = [1, 5, 9, 14, 2, 7, 3]
        let positions = try model.positions(for: ids, grids: [])
        let logits = model.text.forward(tokens: ids, positions: positions, cache: model.text.makeCache(), logits: .all)
        let grid = ImageGrid(t: 1, h: 4, w: 4)
        let pixels = Tensor(shape: [grid.patchCount, model.configuration.vision.patchInputSize])
        for i in 0..<pixels.count { pixels[i] = Float((i * 7919) % 255) / 127.5 - 1 }
        let features = model.encodeImages(pixelValues: pixels, grids: [grid])
        return logits.array + features.embeddings.array + features.deepstack.flatMap(\.array)
    }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test(arguments: [WeightFormat.q8, .q4])
    func secondLoadUsesCacheWithoutConversionAndSameOutputs(format: WeightFormat) throws {
        let box = try Sandbox()
        defer { box.remove() }
        let first = try box.load(format)
        #expect(!first.loadReport.usedRuntimeCache)
        #expect(first.loadReport.wroteRuntimeCache)
        #expect(first.loadReport.convertedTensors > 0)
        let files = try box.cacheFiles()
        #expect(files.count == 1)
        #expect(first.loadReport.cacheFile?.lastPathComponent == files.first?.lastPathComponent)

        let second = try box.load(format)
        #expect(second.loadReport.usedRuntimeCache)
        #expect(!second.loadReport.wroteRuntimeCache)
        #expect(second.loadReport.convertedTensors == 0)

        let uncached = try box.load(format, options: .some(nil))
        #expect(!uncached.loadReport.usedRuntimeCache && uncached.loadReport.cacheFile == nil)
        let expected = Self.bits(try Self.outputs(uncached))
        #expect(Self.bits(try Self.outputs(first)) == expected)
        #expect(Self.bits(try Self.outputs(second)) == expected)
        // The tied output matrix is still the embedding table after a cached load.
        #expect(second.text.weights.lmHead.storageIdentity == second.text.weights.embedTokens.storageIdentity)
    }

    @Test func f32IsNeverCached() throws {
        let box = try Sandbox()
        defer { box.remove() }
        let model = try box.load(.f32)
        #expect(!model.loadReport.usedRuntimeCache && !model.loadReport.wroteRuntimeCache)
        #expect(try box.cacheFiles().isEmpty)
    }

    @Test func formatsHaveSeparateFiles() throws {
        let box = try Sandbox()
        defer { box.remove() }
        _ = try box.load(.q8)
        _ = try box.load(.q4)
        #expect(try box.cacheFiles().count == 2)
        #expect(try box.load(.q4).loadReport.usedRuntimeCache)
    }

    @Test func changedSourceInvalidatesCache() throws {
        let box = try Sandbox()
        defer { box.remove() }
        let first = try box.load()
        let oldFile = try #require(first.loadReport.cacheFile)

        // Change one byte of the last tensor's data (the file's last bytes) and touch the file.
        let weights = box.model.appendingPathComponent("model.safetensors")
        let handle = try FileHandle(forUpdating: weights)
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size - 3)
        let byte = try #require(try handle.read(upToCount: 1)).first!
        try handle.seek(toOffset: size - 3)
        try handle.write(contentsOf: [byte ^ 0x01])
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: weights.path)

        let second = try box.load()
        #expect(!second.loadReport.usedRuntimeCache)
        #expect(second.loadReport.convertedTensors > 0)
        #expect(second.loadReport.wroteRuntimeCache)
        #expect(second.loadReport.cacheFile != oldFile)
        #expect(try box.load().loadReport.usedRuntimeCache)
    }

    @Test func truncatedCacheIsDetectedAndRebuilt() throws {
        let box = try Sandbox()
        defer { box.remove() }
        let file = try #require(try box.load().loadReport.cacheFile)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int)
        #expect(truncate(file.path, off_t(size / 2)) == 0)

        let rebuilt = try box.load()
        #expect(!rebuilt.loadReport.usedRuntimeCache)
        #expect(rebuilt.loadReport.convertedTensors > 0)
        #expect(rebuilt.loadReport.wroteRuntimeCache)
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int == size)
        let again = try box.load()
        #expect(again.loadReport.usedRuntimeCache && again.loadReport.convertedTensors == 0)
    }

    @Test func corruptedTableIsDetected() throws {
        let box = try Sandbox()
        defer { box.remove() }
        let file = try #require(try box.load().loadReport.cacheFile)
        // A byte inside the table (after the 64-byte header and the key) flipped.
        var data = try Data(contentsOf: file)
        data[data.count > 4096 ? 1000 : 100] ^= 0xFF
        try data.write(to: file)
        let model = try box.load()
        #expect(!model.loadReport.usedRuntimeCache && model.loadReport.wroteRuntimeCache)
    }

    @Test func unwritableCacheFolderDoesNotBreakLoading() throws {
        let box = try Sandbox()
        defer { box.remove() }
        // A regular file where the cache folder's parent should be: creating the folder fails (even as root).
        let blocker = box.root.appendingPathComponent("blocker")
        try Data("x".utf8).write(to: blocker)
        let options = RuntimeCacheOptions(directory: blocker.appendingPathComponent("runtime"))
        let model = try box.load(options: .some(options))
        #expect(!model.loadReport.usedRuntimeCache && !model.loadReport.wroteRuntimeCache)
        #expect(model.loadReport.convertedTensors > 0)
        let reference = try box.load(options: .some(nil))
        #expect(Self.bits(try Self.outputs(model)) == Self.bits(try Self.outputs(reference)))
    }

    @Test func keyUsesHubBlobHashForSymlinks() throws {
        let box = try Sandbox()
        defer { box.remove() }
        let hash = String(repeating: "ab", count: 32)
        let blobs = box.root.appendingPathComponent("hub/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        let blob = blobs.appendingPathComponent(hash)
        try FileManager.default.copyItem(at: box.model.appendingPathComponent("model.safetensors"), to: blob)
        let link = box.root.appendingPathComponent("hub/model.safetensors")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: blob)
        #expect(try RuntimeCache.identity(of: link).hasSuffix("lfs=\(hash)"))
        #expect(try RuntimeCache.identity(of: blob).contains("mtime="))
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256Digest.hex(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Digest.hex(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256Digest.hex(of: million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
