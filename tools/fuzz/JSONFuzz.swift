// libFuzzer target for the JSON module (built by scripts/fuzz.sh together with Sources/JSON, as one module).
// Whatever the bytes: parsing returns or throws, never traps or hangs; what it accepts, the writer writes as text that
// parses back to the same value, in document order and sorted; the path-aware reader walks all of it.

@_cdecl("LLVMFuzzerTestOneInput")
public func jsonFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let value = try? JSONParser.parse(bytes, limits: JSONParser.Limits(maxDepth: 64, maxValues: 100_000)) else { return 0 }
    for writer in [JSONWriter(), JSONWriter(sortedKeys: true, indent: " ")] {
        guard let again = try? JSONParser.parse(writer.string(value)), again == value else {
            fatalError("written text does not parse back to the value")
        }
    }
    walk(JSONReader(value))
    return 0
}

private func walk(_ node: JSONReader) {
    switch node.value {
    case .array: for child in (try? node.array()) ?? [] { walk(child) }
    case .object: for (_, child) in (try? node.members()) ?? [] { walk(child) }
    case .number(let n): _ = n.int; _ = n.double; _ = try? node.int()
    case .string: _ = try? node.string()
    default: break
    }
}
