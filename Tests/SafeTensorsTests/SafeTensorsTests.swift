import Foundation
import Testing
import Tensors
@testable import SafeTensors

private func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-st-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A raw safetensors file from a header string and a data section, for crafting hostile files.
private func rawFile(header: String, data: [UInt8], headerLength: UInt64? = nil, in dir: URL) -> URL {
    var bytes = [UInt8]()
    let json = Array(header.utf8)
    var length = (headerLength ?? UInt64(json.count)).littleEndian
    withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: json)
    bytes.append(contentsOf: data)
    let url = dir.appendingPathComponent("model.safetensors")
    FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
    return url
}

@Test func roundTripsF32BF16AndF16() throws {
    let dir = temporaryDirectory()
    let values: [Float] = [0, 1, -2.5, 3.140625, 1e-3, -65504, 0.5, 7]
    try SafeTensorsWriter.write([
        SafeTensorsWriter.floatEntry("a.f32", shape: [2, 4], values: values),
        SafeTensorsWriter.floatEntry("b.bf16", shape: [8], values: values, as: .bf16),
        SafeTensorsWriter.floatEntry("c.f16", shape: [4, 2], values: values, as: .f16),
    ], to: dir.appendingPathComponent("model.safetensors"))
    let store = try WeightStore(directory: dir)
    #expect(store.names == ["a.f32", "b.bf16", "c.f16"])
    #expect(try store.floatTensor("a.f32").array == values)
    #expect(try store.floatTensor("a.f32").shape == [2, 4])
    let bf = try store.floatTensor("b.bf16").array
    for (x, y) in zip(bf, values) { #expect(abs(x - y) <= abs(y) / 128) }
    #expect(bf[3] == 3.140625)  // exactly representable in bf16
    let half = try store.floatTensor("c.f16").array
    #expect(half == values.map { Float(Float16($0)) })
    #expect(store.info("b.bf16")?.dtype == .bf16)
    #expect(store.parameterCount == 24)
    #expect(throws: SafeTensorsError.missingTensor(name: "nope")) { try store.floatTensor("nope") }
}

@Test func bf16RoundingIsNearestEven() {
    #expect(floatToBF16(1.0) == 0x3F80)
    #expect(bf16ToFloat(floatToBF16(1.00390625)) == 1.0)      // exactly halfway, rounds to even
    #expect(bf16ToFloat(floatToBF16(1.01171875)) == 1.015625) // halfway, rounds up to even
    #expect(bf16ToFloat(floatToBF16(-3.0)) == -3.0)
}

@Test func readsShardedCheckpoints() throws {
    let dir = temporaryDirectory()
    try SafeTensorsWriter.write([SafeTensorsWriter.floatEntry("x", shape: [2], values: [1, 2])],
                                to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
    try SafeTensorsWriter.write([SafeTensorsWriter.floatEntry("y", shape: [1], values: [3])],
                                to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
    let index = #"{"metadata":{"total_size":12},"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}}"#
    try index.write(to: dir.appendingPathComponent("model.safetensors.index.json"), atomically: true, encoding: .utf8)
    let store = try WeightStore(directory: dir)
    #expect(store.files.count == 2)
    #expect(try store.floatTensor("y").array == [3])
    #expect(try store.floatTensor("x").array == [1, 2])
}

@Test func refusesShardNamesOutsideTheFolder() throws {
    let dir = temporaryDirectory()
    let index = #"{"weight_map":{"x":"../../etc/passwd"}}"#
    try index.write(to: dir.appendingPathComponent("model.safetensors.index.json"), atomically: true, encoding: .utf8)
    #expect(throws: SafeTensorsError.self) { try WeightStore(directory: dir) }
}

@Test func missingWeightsIsAClearError() {
    let dir = temporaryDirectory()
    #expect(throws: SafeTensorsError.noWeights(directory: dir.path)) { try WeightStore(directory: dir) }
}

@Test func emptyAndTinyFilesAreErrors() throws {
    let dir = temporaryDirectory()
    let url = dir.appendingPathComponent("model.safetensors")
    FileManager.default.createFile(atPath: url.path, contents: Data())
    #expect(throws: SafeTensorsError.fileTooSmall(file: "model.safetensors", size: 0)) { try SafeTensorsFile(url: url) }
    FileManager.default.createFile(atPath: url.path, contents: Data([1, 2, 3]))
    #expect(throws: SafeTensorsError.fileTooSmall(file: "model.safetensors", size: 3)) { try SafeTensorsFile(url: url) }
}

@Test func hugeHeaderLengthIsRefusedBeforeAllocating() {
    let dir = temporaryDirectory()
    let url = rawFile(header: "{}", data: [], headerLength: UInt64.max, in: dir)
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
    let url2 = rawFile(header: "{}", data: [], headerLength: 1 << 20, in: dir)  // under the limit, past the end
    #expect(throws: SafeTensorsError.headerOutOfBounds(file: "model.safetensors", length: 1 << 20, fileSize: 10)) {
        try SafeTensorsFile(url: url2)
    }
}

@Test func headerThatLiesAboutOffsetsIsAnError() {
    let dir = temporaryDirectory()
    // Offsets past the data section.
    var url = rawFile(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0], in: dir)
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
    // Byte count inconsistent with the shape.
    url = rawFile(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 8), in: dir)
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
    // Overlapping tensors.
    url = rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                  data: Array(repeating: 0, count: 8), in: dir)
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
    // Shape whose element count overflows.
    url = rawFile(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#, data: [], in: dir)
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
    // Negative offsets, non-JSON, wrong dtype.
    url = rawFile(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: [0, 0, 0, 0], in: dir)
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(url: url) }
    url = rawFile(header: "{not json", data: [], in: dir)
    #expect(throws: SafeTensorsError.malformedHeader(file: "model.safetensors", reason: "not valid JSON")) { try SafeTensorsFile(url: url) }
    url = rawFile(header: #"{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [0], in: dir)
    #expect(throws: SafeTensorsError.unsupportedDType(file: "model.safetensors", tensor: "w", dtype: "F8_E4M3")) { try SafeTensorsFile(url: url) }
}

/// Property-based smoke test of the header reader (issue 13 §1): a valid file with random byte edits in its header,
/// thousands of times, either loads with every tensor inside the data section or throws `SafeTensorsError` — it never
/// traps or reads out of bounds.
@Test func mutatedHeadersLoadOrFailCleanly() throws {
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let original = dir.appendingPathComponent("model.safetensors")
    try SafeTensorsWriter.write([
        SafeTensorsWriter.floatEntry("a.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
        SafeTensorsWriter.floatEntry("b.bias", shape: [3], values: [7, 8, 9], as: .bf16),
    ], to: original)
    let bytes = try [UInt8](Data(contentsOf: original))
    let headerLength = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
    var state: UInt64 = 0x5AFE_7E45
    func next() -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(truncatingIfNeeded: state >> 33)
    }
    let alphabet = Array("{}[]\",:0123456789-eE.aBFIU_ \u{7F}".utf8) + [0x00, 0xC3, 0xFF]
    var loaded = 0
    for _ in 0..<3000 {
        var mutated = bytes
        for _ in 0..<(1 + next() % 3) {
            let at = 8 + next() % headerLength
            mutated[at] = alphabet[next() % alphabet.count]
        }
        let url = dir.appendingPathComponent("mutated.safetensors")
        FileManager.default.createFile(atPath: url.path, contents: Data(mutated))
        do {
            let file = try SafeTensorsFile(url: url)
            for info in file.tensors.values {
                #expect(info.fileOffset >= 8 + headerLength && info.fileOffset + info.byteCount <= mutated.count)
            }
            loaded += 1
        } catch is SafeTensorsError {
            continue
        }
    }
    #expect(loaded > 0, "no mutation kept the header valid: the test would prove nothing")
}
