import Foundation
import Kernels
import Tensors

extension TextDecoder {
    /// One decode step for several sequences at once (continuous batching): `tokens[b]` is appended to
    /// `caches[b]` at position `caches[b].count + caches[b].ropeDelta`. The projections run as one
    /// `[B, ·]` product, so every weight is read once for all sequences; attention runs per sequence
    /// against its own cache (the same `runLayer` as `forward`, one segment per sequence). Returns logits `[B, V]`.
    public func decodeBatch(tokens: [Int], caches: [KVCache]) -> Tensor {
        let c = configuration
        let b = tokens.count, h = c.hiddenSize
        precondition(b == caches.count && b > 0, "one cache per token")
        let x = Tensor(shape: [b, h])
        for (i, id) in tokens.enumerated() {
            precondition(id >= 0 && id < c.vocabSize, "token id \(id) outside the vocabulary")
            weights.embedTokens.dequantizeRow(id, into: x.data + i * h)
        }
        var positions = MRoPEPositions(t: [], h: [], w: [], ropeDelta: 0)
        for cache in caches {
            let p = Int32(cache.count + cache.ropeDelta)
            positions.t.append(p); positions.h.append(p); positions.w.append(p)
            cache.reserve(1)
        }
        let (cosTable, sinTable) = rotary.tables(positions)
        let s = DecoderScratch(tokens: b, configuration: c)
        let segments = caches.enumerated().map { CacheSegment(rows: $0.offset..<($0.offset + 1), cache: $0.element, past: $0.element.count) }
        cosTable.withUnsafeBufferPointer { cp in
            sinTable.withUnsafeBufferPointer { sp in
                for (l, w) in weights.layers.enumerated() {
                    runLayer(w, index: l, x: x, scratch: s, segments: segments, cos: cp.baseAddress!, sin: sp.baseAddress!)
                }
            }
        }
        for (i, cache) in caches.enumerated() { cache.commit([tokens[i]]) }
        let normed = Tensor(shape: [b, h])
        rmsNorm(x.data, rows: b, width: h, weight: weights.norm.data, eps: c.rmsNormEps, normed.data)
        return weights.lmHead(normed)
    }
}
