import Tensors

/// Keys (after k_norm and rotary) and values of every decoder layer for one sequence.
///
/// Layout per layer: `[capacity, kvHeads·headDim]` rows, one row per token, so appending a token writes
/// one contiguous row and truncating back to a prefix is just moving `count`.
/// Memory per token: `2 · layers · kvHeads · headDim · 4` bytes — 229,376 B (224 KiB) for the 2B
/// (28 layers, 8 KV heads × 128) in F32. Capacity grows by doubling.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let rowWidth: Int
    public private(set) var capacity: Int
    /// Tokens stored.
    public private(set) var count: Int = 0
    /// Token ids stored, for prefix matching.
    public private(set) var tokens: [Int] = []
    /// `ropeDelta` of the prompt whose prefix this cache holds (decode positions continue from it).
    public var ropeDelta: Int = 0
    private(set) var keys: [UnsafeMutablePointer<Float>]
    private(set) var values: [UnsafeMutablePointer<Float>]

    public init(layers: Int, kvHeads: Int, headDim: Int, initialCapacity: Int = 256) {
        layerCount = layers
        rowWidth = kvHeads * headDim
        capacity = max(1, initialCapacity)
        keys = (0..<layers).map { _ in KVCache.rows(max(1, initialCapacity) * kvHeads * headDim) }
        values = (0..<layers).map { _ in KVCache.rows(max(1, initialCapacity) * kvHeads * headDim) }
    }

    /// Room for `count` floats (huge pages from 8 MiB: decode reads every cached row each step).
    private static func rows(_ count: Int) -> UnsafeMutablePointer<Float> {
        LargeAllocation.allocate(byteCount: count * 4).bindMemory(to: Float.self, capacity: count)
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    public var bytesPerToken: Int { 2 * layerCount * rowWidth * 4 }
    public var byteCount: Int { capacity * bytesPerToken }

    /// Makes room for `additional` more tokens.
    public func reserve(_ additional: Int) {
        let needed = count + additional
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        for l in 0..<layerCount {
            let k = KVCache.rows(newCapacity * rowWidth), v = KVCache.rows(newCapacity * rowWidth)
            k.update(from: keys[l], count: count * rowWidth)
            v.update(from: values[l], count: count * rowWidth)
            keys[l].deallocate(); values[l].deallocate()
            keys[l] = k; values[l] = v
        }
        capacity = newCapacity
    }

    func keyRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> { keys[layer] + position * rowWidth }
    func valueRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> { values[layer] + position * rowWidth }

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
