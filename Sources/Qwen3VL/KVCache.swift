import Kernels
import Tensors

/// Keys (after k_norm and rotary) and values of every decoder layer for one sequence.
///
/// Layout per layer: `[capacity, kvHeads·headDim]` rows, one row per token, so appending a token writes
/// one contiguous row and truncating back to a prefix is just moving `count`.
/// Elements: F32 for the F32 weight format (the reference); BF16 for the quantized formats on CPUs whose
/// attention kernels read BF16 (`KVElement.preferred`), which halves both the memory and the bytes decode
/// attention reads per step: 229,376 B (224 KiB) per token for the 2B (28 layers, 8 KV heads × 128) in F32,
/// 114,688 B in BF16. Capacity grows by doubling.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let rowWidth: Int
    public let element: KVElement
    public private(set) var capacity: Int
    /// Tokens stored.
    public private(set) var count: Int = 0
    /// Token ids stored, for prefix matching.
    public private(set) var tokens: [Int] = []
    /// `ropeDelta` of the prompt whose prefix this cache holds (decode positions continue from it).
    public var ropeDelta: Int = 0
    private var keys: [UnsafeMutableRawPointer]
    private var values: [UnsafeMutableRawPointer]

    public init(layers: Int, kvHeads: Int, headDim: Int, initialCapacity: Int = 256, element: KVElement = .f32) {
        layerCount = layers
        rowWidth = kvHeads * headDim
        self.element = element
        capacity = max(1, initialCapacity)
        let bytes = max(1, initialCapacity) * kvHeads * headDim * element.byteCount
        keys = (0..<layers).map { _ in LargeAllocation.allocate(byteCount: bytes) }
        values = (0..<layers).map { _ in LargeAllocation.allocate(byteCount: bytes) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    public var bytesPerToken: Int { 2 * layerCount * rowWidth * element.byteCount }
    public var byteCount: Int { capacity * bytesPerToken }

    /// Makes room for `additional` more tokens.
    public func reserve(_ additional: Int) {
        let needed = count + additional
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let rowBytes = rowWidth * element.byteCount
        for l in 0..<layerCount {
            // Buffers from 8 MiB get huge pages: decode reads every cached row each step.
            let k = LargeAllocation.allocate(byteCount: newCapacity * rowBytes), v = LargeAllocation.allocate(byteCount: newCapacity * rowBytes)
            k.copyMemory(from: keys[l], byteCount: count * rowBytes)
            v.copyMemory(from: values[l], byteCount: count * rowBytes)
            keys[l].deallocate(); values[l].deallocate()
            keys[l] = k; values[l] = v
        }
        capacity = newCapacity
    }

    /// Writes `rows` rows of keys and values (F32, row stride `rowWidth`) at `position` of `layer`, rounding them
    /// to BF16 when the cache holds BF16.
    func store(layer: Int, position: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int) {
        precondition(position + rows <= capacity)
        let offset = position * rowWidth, n = rows * rowWidth
        switch element {
        case .f32:
            (typed(keys[layer], Float.self) + offset).update(from: k, count: n)
            (typed(values[layer], Float.self) + offset).update(from: v, count: n)
        case .bf16:
            roundToBF16(k, count: n, into: typed(keys[layer], UInt16.self) + offset)
            roundToBF16(v, count: n, into: typed(values[layer], UInt16.self) + offset)
        }
    }

    /// Every stored row of `layer` (and the room after them), as attention reads it.
    func rows(layer: Int) -> KVRows {
        switch element {
        case .f32: return .f32(k: UnsafePointer(typed(keys[layer], Float.self)), v: UnsafePointer(typed(values[layer], Float.self)))
        case .bf16: return .bf16(k: UnsafePointer(typed(keys[layer], UInt16.self)), v: UnsafePointer(typed(values[layer], UInt16.self)))
        }
    }

    /// A layer's buffer as `capacity` rows of `T`.
    private func typed<T>(_ buffer: UnsafeMutableRawPointer, _ type: T.Type) -> UnsafeMutablePointer<T> {
        buffer.bindMemory(to: T.self, capacity: capacity * rowWidth)
    }

    /// Records that `newTokens` were written at the end (after all layers stored their rows).
    func commit(_ newTokens: [Int]) {
        precondition(count + newTokens.count <= capacity)
        tokens += newTokens
        count += newTokens.count
    }

    /// Forgets everything after the first `length` tokens (prefix reuse across turns).
    public func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "truncate(\(length)) outside 0...\(count)")
        count = length
        tokens.removeLast(tokens.count - length)
    }

    /// Length of the common prefix between the cached tokens and `other`.
    public func commonPrefixLength(with other: [Int]) -> Int {
        var n = 0
        while n < count, n < other.count, tokens[n] == other[n] { n += 1 }
        return n
    }
}
