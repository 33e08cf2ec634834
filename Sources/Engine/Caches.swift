import Crypto
import Foundation
import Qwen3VL
import Synchronization

/// Hit/miss/byte counters of the engine's caches, read by the server's /metrics.
public struct CacheStatistics: Sendable, Equatable {
    public var hits = 0
    public var misses = 0
    public var bytes = 0
    public var entries = 0
}

/// Vision-encoding cache: image tokens and DeepStack features by the image's content (a SHA-256 of its
/// preprocessed patches and grid, so the same picture at the same resolution is never encoded twice),
/// least recently used evicted beyond a byte budget. Shared by all requests.
final class VisionCache: @unchecked Sendable {
    private let budget: Int
    private var entries: [String: (features: VisionFeatures, lastUse: UInt64)] = [:]
    private var clock: UInt64 = 0
    /// Written by the scheduler thread, read by metrics from any thread.
    private let counters = Mutex(CacheStatistics())
    var statistics: CacheStatistics { counters.withLock { $0 } }

    init(budgetBytes: Int) { budget = budgetBytes }

    /// A stable key for a preprocessed image.
    static func key(_ image: ProcessedImage) -> String {
        var hasher = SHA256()
        [image.gridT, image.gridH, image.gridW].withUnsafeBytes { hasher.update(bufferPointer: $0) }
        image.pixelValues.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    func lookup(_ key: String) -> VisionFeatures? {
        clock += 1
        guard let entry = entries[key] else { counters.withLock { $0.misses += 1 }; return nil }
        entries[key] = (entry.features, clock)
        counters.withLock { $0.hits += 1 }
        return entry.features
    }

    func insert(_ key: String, _ features: VisionFeatures) {
        guard features.byteCount <= budget else { return }
        clock += 1
        entries[key] = (features, clock)
        evict()
    }

    private func evict() {
        var total = entries.values.reduce(0) { $0 + $1.features.byteCount }
        while total > budget, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            total -= oldest.value.features.byteCount
            entries.removeValue(forKey: oldest.key)
        }
        let count = entries.count
        counters.withLock { $0.bytes = total; $0.entries = count }
    }
}

/// Prefix (KV) cache: the KV caches of finished sequences, reused by a new prompt that starts with the
/// same tokens (a follow-up question in a conversation, a shared system prompt, the same image asked
/// again). A match also compares the images behind image-pad runs, so two different pictures of the
/// same size never share keys and values. An entry is taken out while a sequence extends it and put
/// back when that sequence finishes; least recently used entries are evicted beyond a byte budget.
final class PrefixCache: @unchecked Sendable {
    struct Entry {
        let cache: KVCache
        let imageKeys: [String]
        /// Logits after the last prompt token of the request that filled this entry: the same prompt
        /// asked again starts from exactly these (bitwise), so a seed reproduces its answer.
        let promptLogits: (length: Int, logits: [Float])?
        var lastUse: UInt64
    }

    private let budget: Int
    private let imageTokenID: Int
    private var entries: [Entry] = []
    private var clock: UInt64 = 0
    private let counters = Mutex(CacheStatistics())
    var statistics: CacheStatistics { counters.withLock { $0 } }

    init(budgetBytes: Int, imageTokenID: Int) {
        budget = budgetBytes
        self.imageTokenID = imageTokenID
    }

    /// Removes and returns the entry sharing the longest prefix with `tokens` (images compared by key),
    /// with the length of that prefix; nil when nothing matches.
    func take(tokens: [Int], imageKeys: [String]) -> (cache: KVCache, imageKeys: [String], matched: Int, promptLogits: (length: Int, logits: [Float])?)? {
        clock += 1
        var best: (index: Int, length: Int)?
        for (index, entry) in entries.enumerated() {
            let length = matchLength(entry.cache.tokens, entry.imageKeys, tokens, imageKeys)
            if length > (best?.length ?? 0) { best = (index, length) }
        }
        guard let best else { counters.withLock { $0.misses += 1 }; return nil }
        counters.withLock { $0.hits += 1 }
        let entry = entries.remove(at: best.index)
        updateStatistics()
        return (entry.cache, entry.imageKeys, best.length, entry.promptLogits)
    }

    func insert(_ cache: KVCache, imageKeys: [String], promptLogits: (length: Int, logits: [Float])? = nil) {
        guard cache.count > 0, cache.byteCount <= budget else { return }
        clock += 1
        entries.append(Entry(cache: cache, imageKeys: imageKeys, promptLogits: promptLogits, lastUse: clock))
        var total = entries.reduce(0) { $0 + $1.cache.byteCount }
        while total > budget, let oldest = entries.indices.min(by: { entries[$0].lastUse < entries[$1].lastUse }) {
            total -= entries[oldest].cache.byteCount
            entries.remove(at: oldest)
        }
        updateStatistics()
    }

    private func updateStatistics() {
        let bytes = entries.reduce(0) { $0 + $1.cache.byteCount }, count = entries.count
        counters.withLock { $0.bytes = bytes; $0.entries = count }
    }

    /// Common prefix length of two token lists whose k-th image runs must also carry the same image key.
    func matchLength(_ a: [Int], _ aKeys: [String], _ b: [Int], _ bKeys: [String]) -> Int {
        var n = 0, image = -1
        while n < a.count, n < b.count, a[n] == b[n] {
            if a[n] == imageTokenID, n == 0 || a[n - 1] != imageTokenID {
                image += 1
                guard image < aKeys.count, image < bKeys.count, aKeys[image] == bKeys[image] else { return n }
            }
            n += 1
        }
        // Stopping inside an image run would keep part of an image's rows: back off to the run's start.
        if n > 0, n < a.count, n < b.count, a[n - 1] == imageTokenID {
            while n > 0, a[n - 1] == imageTokenID { n -= 1 }
        }
        return n
    }
}
