import Foundation
import Kernels
import Tensors

extension TextDecoder {
    /// One decode step for several sequences at once (continuous batching): `tokens[b]` is appended to
    /// `caches[b]` at position `caches[b].count + caches[b].ropeDelta`. The projections run as one
    /// `[B, ·]` product, so every weight is read once for all sequences; attention runs per sequence
    /// against its own cache. Returns logits `[B, V]`.
    public func decodeBatch(tokens: [Int], caches: [KVCache]) -> Tensor {
        let c = configuration
        let b = tokens.count, h = c.hiddenSize, hd = c.headDim
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
        let kvWidth = c.kvHeadCount * hd, qWidth = c.headCount * hd
        for (l, w) in weights.layers.enumerated() {
            rmsNorm(x.data, rows: b, width: h, weight: w.inputNorm.data, eps: c.rmsNormEps, s.normed.data)
            w.qProj.forward(s.normed.data, rows: b, into: s.q.data)
            w.kProj.forward(s.normed.data, rows: b, into: s.k.data)
            w.vProj.forward(s.normed.data, rows: b, into: s.v.data)
            rmsNorm(s.q.data, rows: b * c.headCount, width: hd, weight: w.qNorm.data, eps: c.rmsNormEps, s.q.data)
            rmsNorm(s.k.data, rows: b * c.kvHeadCount, width: hd, weight: w.kNorm.data, eps: c.rmsNormEps, s.k.data)
            cosTable.withUnsafeBufferPointer { cp in
                sinTable.withUnsafeBufferPointer { sp in
                    applyRotary(s.q.data, rows: b, heads: c.headCount, headDim: hd, rowStride: qWidth, cos: cp.baseAddress!, sin: sp.baseAddress!)
                    applyRotary(s.k.data, rows: b, heads: c.kvHeadCount, headDim: hd, rowStride: kvWidth, cos: cp.baseAddress!, sin: sp.baseAddress!)
                }
            }
            for (i, cache) in caches.enumerated() {
                let past = cache.count
                cache.keyRow(layer: l, position: past).update(from: s.k.data + i * kvWidth, count: kvWidth)
                cache.valueRow(layer: l, position: past).update(from: s.v.data + i * kvWidth, count: kvWidth)
                attention(q: s.q.data + i * qWidth, ldq: qWidth, queryCount: 1,
                          k: cache.keyRow(layer: l, position: 0), v: cache.valueRow(layer: l, position: 0), ldkv: kvWidth,
                          keyCount: past + 1, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: hd,
                          scale: 1 / Float(hd).squareRoot(), causalOffset: past, out: s.attention.data + i * qWidth, ldo: qWidth)
            }
            w.oProj.forward(s.attention.data, rows: b, into: x.data, accumulate: true)
            rmsNorm(x.data, rows: b, width: h, weight: w.postAttentionNorm.data, eps: c.rmsNormEps, s.normed.data)
            w.gateProj.forward(s.normed.data, rows: b, into: s.gate.data)
            w.upProj.forward(s.normed.data, rows: b, into: s.up.data)
            siluMultiply(s.gate.data, s.up.data, count: b * c.intermediateSize)
            w.downProj.forward(s.gate.data, rows: b, into: x.data, accumulate: true)
        }
        for (i, cache) in caches.enumerated() { cache.commit([tokens[i]]) }
        let normed = Tensor(shape: [b, h])
        rmsNorm(x.data, rows: b, width: h, weight: weights.norm.data, eps: c.rmsNormEps, normed.data)
        return weights.lmHead(normed)
    }
}
