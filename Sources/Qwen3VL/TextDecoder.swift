import Foundation
import Kernels
import Tensors

/// Which positions of a forward pass need logits.
public enum LogitsSelection: Sendable {
    case none, last, all
}

/// The Qwen3 decoder (spec §4): embeddings with image rows substituted, layers with GQA, per-head
/// q/k RMSNorm, interleaved MRoPE and SwiGLU, DeepStack additions after the first layers, final
/// norm and the (tied) output matrix.
public struct TextDecoder: Sendable {
    public let configuration: TextConfiguration
    public let weights: TextWeights
    public let imageTokenID: Int
    let rotary: TextRotary

    public init(configuration: TextConfiguration, weights: TextWeights, imageTokenID: Int) {
        self.configuration = configuration
        self.weights = weights
        self.imageTokenID = imageTokenID
        rotary = TextRotary(headDim: configuration.headDim, theta: configuration.ropeTheta, section: configuration.mropeSection)
    }

    public func makeCache(initialCapacity: Int = 256) -> KVCache {
        KVCache(layers: configuration.layerCount, kvHeads: configuration.kvHeadCount, headDim: configuration.headDim,
                initialCapacity: initialCapacity,
                element: .preferred(quantized: weights.layers.first.map { $0.qProj.format != .f32 } ?? false))
    }

    /// Appends `tokens` to `cache` and returns logits `[rows, V]` for the selected positions.
    ///
    /// - `positions`: MRoPE positions of exactly these tokens.
    /// - `vision`: features of the prompt's images; the chunk's `<|image_pad|>` tokens take rows
    ///   `visionRowStart...` in order (the rows of earlier chunks come before it).
    /// - `layerHook` (tests) sees the hidden state after every layer.
    public func forward(tokens: [Int], positions: MRoPEPositions, cache: KVCache,
                        vision: VisionFeatures? = nil, visionRowStart: Int = 0,
                        logits selection: LogitsSelection = .last,
                        layerHook: ((Int, Tensor) -> Void)? = nil) -> Tensor {
        let c = configuration
        let t = tokens.count, h = c.hiddenSize
        precondition(positions.count == t, "positions for \(positions.count) tokens, \(t) tokens given")
        let x = Tensor(shape: [t, h])

        // Embeddings; image-pad rows come from the vision tower.
        var imageRows: [(token: Int, feature: Int)] = []
        var nextFeature = visionRowStart
        for (i, id) in tokens.enumerated() {
            if id == imageTokenID, let vision {
                precondition(nextFeature < vision.tokenCount, "more image tokens than vision features")
                (x.data + i * h).update(from: vision.embeddings.row(nextFeature), count: h)
                imageRows.append((i, nextFeature))
                nextFeature += 1
            } else {
                precondition(id >= 0 && id < c.vocabSize, "token id \(id) outside the vocabulary")
                weights.embedTokens.dequantizeRow(id, into: x.data + i * h)
            }
        }

        let (cosTable, sinTable) = rotary.tables(positions)
        let past = cache.count
        cache.reserve(t)
        let s = DecoderScratch(tokens: t, configuration: c)
        for (l, layer) in weights.layers.enumerated() {
            cosTable.withUnsafeBufferPointer { cp in
                sinTable.withUnsafeBufferPointer { sp in
                    runLayer(layer, index: l, x: x, scratch: s, segments: [CacheSegment(rows: 0..<t, cache: cache, past: past)],
                             cos: cp.baseAddress!, sin: sp.baseAddress!)
                }
            }
            if let vision, l < vision.deepstack.count {
                let feature = vision.deepstack[l]
                for (row, f) in imageRows { addInPlace(x.data + row * h, feature.row(f), count: h) }
            }
            layerHook?(l, x)
        }
        cache.commit(tokens)

        let selected: Range<Int>
        switch selection {
        case .none: return Tensor(shape: [0, c.vocabSize])
        case .last: selected = (t - 1)..<t
        case .all: selected = 0..<t
        }
        let normed = Tensor(shape: [selected.count, h])
        rmsNorm(x.data + selected.lowerBound * h, rows: selected.count, width: h, weight: weights.norm.data, eps: c.rmsNormEps, normed.data)
        return weights.lmHead(normed)
    }

    /// Working buffers for one forward pass, reused across layers.
    final class DecoderScratch {
        let normed, q, k, v, attention, gate, up: Tensor
        init(tokens t: Int, configuration c: TextConfiguration) {
            normed = Tensor(shape: [t, c.hiddenSize])
            q = Tensor(shape: [t, c.headCount * c.headDim])
            k = Tensor(shape: [t, c.kvHeadCount * c.headDim])
            v = Tensor(shape: [t, c.kvHeadCount * c.headDim])
            attention = Tensor(shape: [t, c.headCount * c.headDim])
            gate = Tensor(shape: [t, c.intermediateSize])
            up = Tensor(shape: [t, c.intermediateSize])
        }
    }

    /// Rows `rows` of a layer's input belong to the sequence whose keys and values live in `cache`, after its
    /// first `past` positions. A prefill chunk is one segment; a batched decode step has one row per sequence.
    struct CacheSegment {
        let rows: Range<Int>
        let cache: KVCache
        let past: Int
    }

    /// One decoder layer over all rows of `x` — the projections run once for every row, so each weight is read
    /// once per step however many sequences share it — with each segment's rows attending to its own cache.
    /// Used by `forward` (prefill, single decode) and `decodeBatch` alike.
    func runLayer(_ w: DecoderLayerWeights, index l: Int, x: Tensor, scratch s: DecoderScratch, segments: [CacheSegment],
                  cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let c = configuration
        let t = x.shape[0], h = c.hiddenSize, hd = c.headDim
        let kvWidth = c.kvHeadCount * hd, qWidth = c.headCount * hd
        rmsNorm(x.data, rows: t, width: h, weight: w.inputNorm.data, eps: c.rmsNormEps, s.normed.data)
        w.qProj.forward(s.normed.data, rows: t, into: s.q.data)
        w.kProj.forward(s.normed.data, rows: t, into: s.k.data)
        w.vProj.forward(s.normed.data, rows: t, into: s.v.data)
        rmsNorm(s.q.data, rows: t * c.headCount, width: hd, weight: w.qNorm.data, eps: c.rmsNormEps, s.q.data)
        rmsNorm(s.k.data, rows: t * c.kvHeadCount, width: hd, weight: w.kNorm.data, eps: c.rmsNormEps, s.k.data)
        applyRotary(s.q.data, rows: t, heads: c.headCount, headDim: hd, rowStride: qWidth, cos: cos, sin: sin)
        applyRotary(s.k.data, rows: t, heads: c.kvHeadCount, headDim: hd, rowStride: kvWidth, cos: cos, sin: sin)
        for segment in segments {
            let first = segment.rows.lowerBound, count = segment.rows.count, cache = segment.cache
            cache.store(layer: l, position: segment.past, keys: s.k.data + first * kvWidth, values: s.v.data + first * kvWidth,
                        rows: count)
            attention(q: s.q.data + first * qWidth, ldq: qWidth, queryCount: count, kv: cache.rows(layer: l), ldkv: kvWidth,
                      keyCount: segment.past + count, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: hd,
                      scale: 1 / Float(hd).squareRoot(), causalOffset: segment.past,
                      out: s.attention.data + first * qWidth, ldo: qWidth,
                      precision: w.qProj.format == .f32 ? .f32 : .reduced)
        }
        w.oProj.forward(s.attention.data, rows: t, into: x.data, accumulate: true)
        rmsNorm(x.data, rows: t, width: h, weight: w.postAttentionNorm.data, eps: c.rmsNormEps, s.normed.data)
        w.gateProj.forward(s.normed.data, rows: t, into: s.gate.data)
        w.upProj.forward(s.normed.data, rows: t, into: s.up.data)
        siluMultiply(s.gate.data, s.up.data, count: t * c.intermediateSize)
        w.downProj.forward(s.gate.data, rows: t, into: x.data, accumulate: true)
    }
}
