import Foundation
import Kernels
import Tensors

/// What the vision tower returns for a batch of images (spec §3.5): image tokens `[ΣM, H]` in
/// prompt order, and one `[ΣM, H]` DeepStack feature per configured tap.
public struct VisionFeatures: @unchecked Sendable {
    public let embeddings: Tensor
    public let deepstack: [Tensor]
    public var tokenCount: Int { embeddings.shape[0] }
    public var byteCount: Int { (embeddings.count + deepstack.reduce(0) { $0 + $1.count }) * 4 }

    public init(embeddings: Tensor, deepstack: [Tensor]) {
        self.embeddings = embeddings
        self.deepstack = deepstack
    }

    /// Rows `range` of the features (one image out of a batch, or a prefill chunk).
    public func rows(_ range: Range<Int>) -> VisionFeatures {
        func slice(_ t: Tensor) -> Tensor {
            let width = t.shape[1]
            let out = Tensor(shape: [range.count, width])
            out.data.update(from: t.data + range.lowerBound * width, count: range.count * width)
            return out
        }
        return VisionFeatures(embeddings: slice(embeddings), deepstack: deepstack.map(slice))
    }

    /// Concatenates features of several images in order.
    public static func concatenate(_ parts: [VisionFeatures]) -> VisionFeatures? {
        guard let first = parts.first else { return nil }
        func cat(_ tensors: [Tensor]) -> Tensor {
            let width = tensors[0].shape[1]
            let out = Tensor(shape: [tensors.reduce(0) { $0 + $1.shape[0] }, width])
            var offset = 0
            for t in tensors {
                (out.data + offset).update(from: t.data, count: t.count)
                offset += t.count
            }
            return out
        }
        return VisionFeatures(embeddings: cat(parts.map(\.embeddings)),
                              deepstack: first.deepstack.indices.map { k in cat(parts.map { $0.deepstack[k] }) })
    }
}

/// The Qwen3-VL ViT (spec §3): patch embedding, interpolated learned positions, blocks with 2D rotary
/// full attention restricted to each image, DeepStack taps, and the final 2×2 merger.
public struct VisionEncoder: Sendable {
    public let configuration: VisionConfiguration
    public let weights: VisionWeights

    public init(configuration: VisionConfiguration, weights: VisionWeights) {
        self.configuration = configuration
        self.weights = weights
    }

    /// Encodes images whose patches are concatenated in `pixelValues [ΣN, C·T·P·P]`.
    /// `tapHook` (tests) sees the hidden state after every block.
    public func encode(pixelValues: UnsafePointer<Float>, grids: [ImageGrid],
                       tapHook: ((Int, Tensor) -> Void)? = nil) -> VisionFeatures {
        let encoding = VisionEncoding(encoder: self, pixelValues: pixelValues, grids: grids)
        while !encoding.isFinished {
            let index = encoding.nextBlock
            encoding.runNextBlock()
            tapHook?(index, encoding.hidden)
        }
        return encoding.features()
    }

    /// Working buffers of one block, reused across blocks.
    final class BlockScratch {
        let qkv: Tensor, attention: Tensor, normed: Tensor, hidden: Tensor
        init(patches n: Int, configuration c: VisionConfiguration) {
            qkv = Tensor(shape: [n, 3 * c.hiddenSize])
            attention = Tensor(shape: [n, c.hiddenSize])
            normed = Tensor(shape: [n, c.hiddenSize])
            hidden = Tensor(shape: [n, c.intermediateSize])
        }
    }

    func runBlock(_ w: VisionBlockWeights, x: Tensor, scratch s: BlockScratch, cos: [Float], sin: [Float], segments: [Range<Int>]) {
        let c = configuration
        let d = c.hiddenSize, n = x.shape[0], hd = c.headDim
        layerNorm(x.data, rows: n, width: d, weight: w.norm1Weight.data, bias: w.norm1Bias.data, eps: c.layerNormEps, s.normed.data)
        w.qkv.forward(s.normed.data, rows: n, into: s.qkv.data)
        cos.withUnsafeBufferPointer { cp in
            sin.withUnsafeBufferPointer { sp in
                // Q and K are adjacent column blocks of each qkv row: rotate both as 2·heads heads.
                applyRotary(s.qkv.data, rows: n, heads: 2 * c.headCount, headDim: hd, rowStride: 3 * d,
                            cos: cp.baseAddress!, sin: sp.baseAddress!)
            }
        }
        for segment in segments {
            let base = s.qkv.data + segment.lowerBound * 3 * d
            attention(q: base, ldq: 3 * d, queryCount: segment.count,
                      k: base + d, v: base + 2 * d, ldkv: 3 * d, keyCount: segment.count,
                      heads: c.headCount, kvHeads: c.headCount, headDim: hd, scale: 1 / Float(hd).squareRoot(),
                      causalOffset: nil, out: s.attention.data + segment.lowerBound * d, ldo: d,
                      precision: w.qkv.format == .f32 ? .f32 : .reduced)
        }
        w.proj.forward(s.attention.data, rows: n, into: x.data, accumulate: true)
        layerNorm(x.data, rows: n, width: d, weight: w.norm2Weight.data, bias: w.norm2Bias.data, eps: c.layerNormEps, s.normed.data)
        w.fc1.forward(s.normed.data, rows: n, into: s.hidden.data)
        geluTanh(s.hidden.data, count: n * c.intermediateSize)
        w.fc2.forward(s.hidden.data, rows: n, into: x.data, accumulate: true)
    }

    /// 2×2 patch merger (spec §3.5): groups 4 consecutive rows into one `[4D]` row, LayerNorm before
    /// (final merger, per patch) or after (DeepStack) grouping, then fc1 → exact GELU → fc2.
    func merge(_ x: Tensor, _ w: MergerWeights) -> Tensor {
        let c = configuration
        let d = c.hiddenSize, n = x.shape[0], unit = c.mergeUnit
        let tokens = n / unit, width = d * unit
        let grouped = Tensor(shape: [tokens, width])  // same memory order as [n, d]
        if w.normAfterGrouping {
            layerNorm(x.data, rows: tokens, width: width, weight: w.normWeight.data, bias: w.normBias.data, eps: c.layerNormEps, grouped.data)
        } else {
            layerNorm(x.data, rows: n, width: d, weight: w.normWeight.data, bias: w.normBias.data, eps: c.layerNormEps, grouped.data)
        }
        let hidden = w.fc1(grouped)
        geluErf(hidden.data, count: hidden.count)
        return w.fc2(hidden)
    }
}

/// One in-progress vision encoding that advances a block at a time, so the scheduler can interleave other
/// streams' decode steps with a long image encoding (a 512×512 image is ≈ 8 s of work on 2 cores).
/// `VisionEncoder.encode` runs it to the end in one go.
public final class VisionEncoding: @unchecked Sendable {
    let encoder: VisionEncoder
    /// Hidden state `[N, D]` after `nextBlock` blocks.
    let hidden: Tensor
    let scratch: VisionEncoder.BlockScratch
    let cosTable: [Float], sinTable: [Float]
    let segments: [Range<Int>]
    private var deepstack: [Tensor] = []
    public private(set) var nextBlock = 0

    /// Patch embedding, interpolated positions and the rotary tables — the part before the blocks.
    public init(encoder: VisionEncoder, pixelValues: UnsafePointer<Float>, grids: [ImageGrid]) {
        self.encoder = encoder
        let c = encoder.configuration
        let d = c.hiddenSize, m = c.spatialMergeSize
        let n = grids.reduce(0) { $0 + $1.patchCount }
        hidden = Tensor(shape: [n, d])
        encoder.weights.patchEmbed.forward(pixelValues, rows: n, into: hidden.data)
        // Positions and rotary tables per image, concatenated.
        var cosTable: [Float] = [], sinTable: [Float] = []
        var offset = 0
        for grid in grids {
            VisionPositions.addPositionEmbedding(hidden.data + offset * d, grid: grid, table: encoder.weights.positionEmbedding,
                                                 side: c.positionGridSide, mergeSize: m)
            let tables = VisionPositions.rotaryTables(grid, headDim: c.headDim, theta: c.ropeTheta, mergeSize: m)
            cosTable += tables.cos
            sinTable += tables.sin
            offset += grid.patchCount
        }
        self.cosTable = cosTable
        self.sinTable = sinTable
        // Attention segments: one per frame of each image (spec §3.4).
        var segments: [Range<Int>] = []
        offset = 0
        for grid in grids {
            for _ in 0..<grid.t {
                segments.append(offset..<(offset + grid.h * grid.w))
                offset += grid.h * grid.w
            }
        }
        self.segments = segments
        scratch = VisionEncoder.BlockScratch(patches: n, configuration: c)
    }

    public var isFinished: Bool { nextBlock >= encoder.weights.blocks.count }

    /// Runs one ViT block (and its DeepStack merger when the block is tapped).
    public func runNextBlock() {
        guard !isFinished else { return }
        let index = nextBlock
        encoder.runBlock(encoder.weights.blocks[index], x: hidden, scratch: scratch, cos: cosTable, sin: sinTable, segments: segments)
        if let tap = encoder.configuration.deepstackIndexes.firstIndex(of: index) {
            deepstack.append(encoder.merge(hidden, encoder.weights.deepstackMergers[tap]))
        }
        nextBlock += 1
    }

    /// The final merger's image tokens and the DeepStack features (all blocks must have run).
    public func features() -> VisionFeatures {
        precondition(isFinished, "vision encoding not finished")
        return VisionFeatures(embeddings: encoder.merge(hidden, encoder.weights.merger), deepstack: deepstack)
    }
}
