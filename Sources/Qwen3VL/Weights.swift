import Foundation
import Kernels
import SafeTensors
import Tensors

/// Every checkpoint key of `Qwen3VLForConditionalGeneration` is named in this file and nowhere else
/// (spec §1.2). Shapes are checked against the configuration at load: a mismatch names the key, the
/// expected and the actual shape. Weights are converted from their on-disk dtype (BF16) to the
/// runtime format; the tied `lm_head` shares the embedding table.
public enum WeightLoadError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(key: String, expected: [Int], actual: [Int])
    case missing(key: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let key, let expected, let actual):
            return "checkpoint tensor '\(key)' has shape \(actual), but config.json implies \(expected)"
        case .missing(let key):
            return "checkpoint has no tensor '\(key)'; is this a Qwen3-VL checkpoint?"
        }
    }
}

// MARK: - Weight types (shapes use the notation of spec §0: D vision hidden, H text hidden)

/// One ViT block (spec §3.4).
public struct VisionBlockWeights: Sendable {
    public let norm1Weight, norm1Bias: Tensor   // [D]
    public let qkv: LinearWeight                // [3D, D] + [3D]: Q rows, then K, then V
    public let proj: LinearWeight               // [D, D] + [D]
    public let norm2Weight, norm2Bias: Tensor   // [D]
    public let fc1: LinearWeight                // [I, D] + [I]
    public let fc2: LinearWeight                // [D, I] + [D]
}

/// The final merger (LayerNorm per patch) or a DeepStack merger (LayerNorm after grouping 2×2 patches).
public struct MergerWeights: Sendable {
    public let normWeight, normBias: Tensor     // [D] (final) or [4D] (DeepStack)
    public let fc1: LinearWeight                // [4D, 4D] + [4D]
    public let fc2: LinearWeight                // [H, 4D] + [H]
    public let normAfterGrouping: Bool
}

public struct VisionWeights: Sendable {
    public let patchEmbed: LinearWeight         // Conv3d [D, C, T, P, P] flattened to [D, C·T·P·P] + [D]
    public let positionEmbedding: Tensor        // [S·S, D], learned S×S grid, row-major
    public let blocks: [VisionBlockWeights]
    public let merger: MergerWeights
    public let deepstackMergers: [MergerWeights]
}

/// One Qwen3 decoder layer (spec §4.2); no biases.
public struct DecoderLayerWeights: Sendable {
    public let inputNorm: Tensor                // [H]
    public let qProj: LinearWeight              // [heads·hd, H]
    public let kProj: LinearWeight              // [kvHeads·hd, H]
    public let vProj: LinearWeight              // [kvHeads·hd, H]
    public let oProj: LinearWeight              // [H, heads·hd]
    public let qNorm, kNorm: Tensor             // [hd]
    public let postAttentionNorm: Tensor        // [H]
    public let gateProj, upProj: LinearWeight   // [F, H]
    public let downProj: LinearWeight           // [H, F]
}

public struct TextWeights: Sendable {
    /// `[V, H]` in the runtime format; look rows up with `embedTokens.dequantizeRow(_:into:)`. When
    /// the embeddings are tied this is the very object `lmHead` is (one quantized copy, not two).
    public let embedTokens: LinearWeight
    public let layers: [DecoderLayerWeights]
    public let norm: Tensor                     // [H]
    public let lmHead: LinearWeight             // [V, H]; the embedding table itself when tied
}

public struct Qwen3VLWeights: Sendable {
    public let vision: VisionWeights
    public let text: TextWeights

    /// Loads and checks every tensor; linear layers and the embedding table are converted to `format`
    /// at load (norms, biases and the vision position table stay F32).
    public static func load(from store: WeightStore, configuration: Qwen3VLConfiguration,
                            format: WeightFormat = .f32) throws -> Qwen3VLWeights {
        try load(from: store, configuration: configuration, format: format, session: LoadSession())
    }

    /// Same, reading from or recording into the runtime cache of `session`.
    static func load(from store: WeightStore, configuration: Qwen3VLConfiguration,
                     format: WeightFormat, session: LoadSession) throws -> Qwen3VLWeights {
        let reader = TensorReader(store: store, format: format, session: session)
        return Qwen3VLWeights(
            vision: try loadVision(reader, configuration.vision, textHidden: configuration.text.hiddenSize),
            text: try loadText(reader, configuration)
        )
    }

    // MARK: Key names

    /// Checkpoints saved by transformers ≥ 4.57 use `model.visual.` / `model.language_model.`; older
    /// exports used `visual.` / `model.`. The first prefix whose probe key exists wins.
    static func prefixes(_ store: WeightStore) -> (vision: String, text: String) {
        let vision = store.contains("model.visual.patch_embed.proj.weight") ? "model.visual." : "visual."
        let text = store.contains("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        return (vision, text)
    }

    static func loadVision(_ r: TensorReader, _ c: VisionConfiguration, textHidden: Int) throws -> VisionWeights {
        let p = prefixes(r.store).vision
        let d = c.hiddenSize, i = c.intermediateSize, merged = d * c.mergeUnit
        let patchEmbed = try r.matrix(p + "patch_embed.proj.weight",
                                      [d, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize],
                                      rows: d, columns: c.patchInputSize, bias: try r.tensor(p + "patch_embed.proj.bias", [d]))
        let blocks = try (0..<c.depth).map { b -> VisionBlockWeights in
            let k = p + "blocks.\(b)."
            return VisionBlockWeights(
                norm1Weight: try r.tensor(k + "norm1.weight", [d]), norm1Bias: try r.tensor(k + "norm1.bias", [d]),
                qkv: try r.linear(k + "attn.qkv", out: 3 * d, in: d, bias: true),
                proj: try r.linear(k + "attn.proj", out: d, in: d, bias: true),
                norm2Weight: try r.tensor(k + "norm2.weight", [d]), norm2Bias: try r.tensor(k + "norm2.bias", [d]),
                fc1: try r.linear(k + "mlp.linear_fc1", out: i, in: d, bias: true),
                fc2: try r.linear(k + "mlp.linear_fc2", out: d, in: i, bias: true))
        }
        func merger(_ k: String, normWidth: Int, afterGrouping: Bool) throws -> MergerWeights {
            MergerWeights(
                normWeight: try r.tensor(k + "norm.weight", [normWidth]), normBias: try r.tensor(k + "norm.bias", [normWidth]),
                fc1: try r.linear(k + "linear_fc1", out: merged, in: merged, bias: true),
                fc2: try r.linear(k + "linear_fc2", out: textHidden, in: merged, bias: true),
                normAfterGrouping: afterGrouping)
        }
        return VisionWeights(
            patchEmbed: patchEmbed,
            positionEmbedding: try r.tensor(p + "pos_embed.weight", [c.positionEmbeddingCount, d]),
            blocks: blocks,
            merger: try merger(p + "merger.", normWidth: d, afterGrouping: false),
            deepstackMergers: try c.deepstackIndexes.indices.map {
                try merger(p + "deepstack_merger_list.\($0).", normWidth: merged, afterGrouping: true)
            })
    }

    static func loadText(_ r: TensorReader, _ config: Qwen3VLConfiguration) throws -> TextWeights {
        let c = config.text
        let p = prefixes(r.store).text
        let h = c.hiddenSize, hd = c.headDim, f = c.intermediateSize
        let embed = try r.matrix(p + "embed_tokens.weight", [c.vocabSize, h], rows: c.vocabSize, columns: h, bias: nil)
        let layers = try (0..<c.layerCount).map { l -> DecoderLayerWeights in
            let k = p + "layers.\(l)."
            return DecoderLayerWeights(
                inputNorm: try r.tensor(k + "input_layernorm.weight", [h]),
                qProj: try r.linear(k + "self_attn.q_proj", out: c.headCount * hd, in: h, bias: false),
                kProj: try r.linear(k + "self_attn.k_proj", out: c.kvHeadCount * hd, in: h, bias: false),
                vProj: try r.linear(k + "self_attn.v_proj", out: c.kvHeadCount * hd, in: h, bias: false),
                oProj: try r.linear(k + "self_attn.o_proj", out: h, in: c.headCount * hd, bias: false),
                qNorm: try r.tensor(k + "self_attn.q_norm.weight", [hd]),
                kNorm: try r.tensor(k + "self_attn.k_norm.weight", [hd]),
                postAttentionNorm: try r.tensor(k + "post_attention_layernorm.weight", [h]),
                gateProj: try r.linear(k + "mlp.gate_proj", out: f, in: h, bias: false),
                upProj: try r.linear(k + "mlp.up_proj", out: f, in: h, bias: false),
                downProj: try r.linear(k + "mlp.down_proj", out: h, in: f, bias: false))
        }
        // Tied (2B, 4B): the output matrix is the embedding table (a present lm_head.weight is ignored, spec §1.2).
        // Untied (8B): `lm_head.weight` is a matrix of its own and must be there; using the embedding instead would
        // load without complaint and answer nonsense.
        let lmHead = config.tieWordEmbeddings ? embed : try r.linear("lm_head", out: c.vocabSize, in: h, bias: false)
        return TextWeights(embedTokens: embed, layers: layers, norm: try r.tensor(p + "norm.weight", [h]), lmHead: lmHead)
    }
}

/// Reads tensors by name with shape checks. With a runtime cache (`session.reader`), tensors and
/// converted matrices come from the cache file; otherwise they are converted from the checkpoint and,
/// when a cache is being built (`session.writer`), recorded for it.
struct TensorReader {
    let store: WeightStore
    var format: WeightFormat = .f32
    var session = LoadSession()

    private func check(_ key: String, _ shape: [Int]) throws {
        guard let info = store.info(key) else { throw WeightLoadError.missing(key: key) }
        guard info.shape == shape else { throw WeightLoadError.shapeMismatch(key: key, expected: shape, actual: info.shape) }
    }

    /// The checkpoint tensor converted to F32 (no cache).
    private func convert(_ key: String) throws -> Tensor {
        let tensor = try store.floatTensor(key)
        // The mapped BF16 pages are no longer needed by this process: keep them out of its resident set.
        store.releasePages(key)
        session.convertedTensors += 1
        return tensor
    }

    func tensor(_ key: String, _ shape: [Int]) throws -> Tensor {
        try check(key, shape)
        if let reader = session.reader {
            if let cached = reader.tensor(key, shape: shape) { return cached }
            session.cacheMisses += 1
        }
        let tensor = try convert(key)
        session.writer?.add(tensor, name: key)
        return tensor
    }

    /// A checkpoint tensor of `shape` used as a `[rows, columns]` linear weight in `format`.
    func matrix(_ key: String, _ shape: [Int], rows: Int, columns: Int, bias: Tensor?) throws -> LinearWeight {
        try check(key, shape)
        if let reader = session.reader {
            if let cached = reader.linear(key, format: format, rows: rows, columns: columns, bias: bias) { return cached }
            session.cacheMisses += 1
        }
        let weight: LinearWeight
        switch format {
        case .f32:
            let tensor = try convert(key)
            tensor.reshape([rows, columns])
            weight = LinearWeight(tensor, bias: bias, format: format)
        case .q8, .q4:
            weight = try quantizeInSlices(key, rows: rows, columns: columns, bias: bias)
        }
        session.writer?.add(weight, name: key)
        return weight
    }

    /// Rows converted per slice when quantizing at load (16 MiB of F32 at the 2B's width of 2,048): the
    /// 151,936 × 2,048 embedding would otherwise need a 1.2 GB F32 copy, the peak of the whole load.
    static let sliceElements = 1 << 22

    /// Converts and quantizes a checkpoint matrix a slice of rows at a time (same values as quantizing
    /// the whole F32 matrix: quantization is per row).
    private func quantizeInSlices(_ key: String, rows: Int, columns: Int, bias: Tensor?) throws -> LinearWeight {
        let sliceRows = max(1, min(rows, Self.sliceElements / max(1, columns)))
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: sliceRows * columns)
        defer { buffer.deallocate() }
        let q8 = format == .q8 ? Q8Matrix(rows: rows, columns: columns, layout: session.q8Layout) : nil
        let q4 = format == .q4 ? Q4Matrix(rows: rows, columns: columns) : nil
        var r0 = 0
        while r0 < rows {
            let n = min(sliceRows, rows - r0)
            try store.convertElements(key, (r0 * columns)..<((r0 + n) * columns), into: buffer)
            q8?.quantizeRows(from: buffer, rows: r0..<(r0 + n))
            q4?.quantizeRows(from: buffer, rows: r0..<(r0 + n))
            r0 += n
        }
        store.releasePages(key)
        session.convertedTensors += 1
        if let q8 { return LinearWeight(q8: q8, bias: bias) }
        return LinearWeight(q4: q4!, bias: bias)
    }

    func linear(_ key: String, out: Int, in inFeatures: Int, bias: Bool) throws -> LinearWeight {
        let bias = bias ? try tensor(key + ".bias", [out]) : nil
        return try matrix(key + ".weight", [out, inFeatures], rows: out, columns: inFeatures, bias: bias)
    }
}

// MARK: - Checkpoint layout

extension Qwen3VLWeights {
    /// Every tensor a checkpoint for `configuration` holds, with its shape, under the names
    /// transformers ≥ 4.57 writes (`model.visual.`, `model.language_model.`; no `lm_head` when tied).
    /// Used to write random checkpoints of real shapes; a test checks it against what `load` reads.
    public static func checkpointLayout(_ configuration: Qwen3VLConfiguration) -> [(name: String, shape: [Int])] {
        let v = configuration.vision, t = configuration.text
        let p = "model.visual.", q = "model.language_model."
        let d = v.hiddenSize, merged = d * v.mergeUnit, h = t.hiddenSize, hd = t.headDim
        var out: [(String, [Int])] = [
            (p + "patch_embed.proj.weight", [d, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]),
            (p + "patch_embed.proj.bias", [d]),
            (p + "pos_embed.weight", [v.positionEmbeddingCount, d]),
        ]
        for b in 0..<v.depth {
            let k = p + "blocks.\(b)."
            out += [(k + "norm1.weight", [d]), (k + "norm1.bias", [d]),
                    (k + "attn.qkv.weight", [3 * d, d]), (k + "attn.qkv.bias", [3 * d]),
                    (k + "attn.proj.weight", [d, d]), (k + "attn.proj.bias", [d]),
                    (k + "norm2.weight", [d]), (k + "norm2.bias", [d]),
                    (k + "mlp.linear_fc1.weight", [v.intermediateSize, d]), (k + "mlp.linear_fc1.bias", [v.intermediateSize]),
                    (k + "mlp.linear_fc2.weight", [d, v.intermediateSize]), (k + "mlp.linear_fc2.bias", [d])]
        }
        func merger(_ k: String, normWidth: Int) -> [(String, [Int])] {
            [(k + "norm.weight", [normWidth]), (k + "norm.bias", [normWidth]),
             (k + "linear_fc1.weight", [merged, merged]), (k + "linear_fc1.bias", [merged]),
             (k + "linear_fc2.weight", [h, merged]), (k + "linear_fc2.bias", [h])]
        }
        out += merger(p + "merger.", normWidth: d)
        for k in v.deepstackIndexes.indices { out += merger(p + "deepstack_merger_list.\(k).", normWidth: merged) }
        out.append((q + "embed_tokens.weight", [t.vocabSize, h]))
        for l in 0..<t.layerCount {
            let k = q + "layers.\(l)."
            out += [(k + "input_layernorm.weight", [h]),
                    (k + "self_attn.q_proj.weight", [t.headCount * hd, h]),
                    (k + "self_attn.k_proj.weight", [t.kvHeadCount * hd, h]),
                    (k + "self_attn.v_proj.weight", [t.kvHeadCount * hd, h]),
                    (k + "self_attn.o_proj.weight", [h, t.headCount * hd]),
                    (k + "self_attn.q_norm.weight", [hd]), (k + "self_attn.k_norm.weight", [hd]),
                    (k + "post_attention_layernorm.weight", [h]),
                    (k + "mlp.gate_proj.weight", [t.intermediateSize, h]),
                    (k + "mlp.up_proj.weight", [t.intermediateSize, h]),
                    (k + "mlp.down_proj.weight", [h, t.intermediateSize])]
        }
        out.append((q + "norm.weight", [h]))
        if !configuration.tieWordEmbeddings { out.append(("lm_head.weight", [t.vocabSize, h])) }
        return out
    }
}

extension TextWeights {
    /// Bytes of all text weights in their runtime format (the tied output matrix counted once).
    public var byteCount: Int {
        var total = embedTokens.byteCount + norm.count * 4
        for l in layers {
            total += [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj].reduce(0) { $0 + $1.byteCount }
            total += (l.inputNorm.count + l.qNorm.count + l.kNorm.count + l.postAttentionNorm.count) * 4
        }
        if lmHead.storageIdentity != embedTokens.storageIdentity { total += lmHead.byteCount }
        return total
    }

    /// Weights multiplied per prompt token (everything but the embedding lookup; the output matrix
    /// only for the last position, so it is excluded as well).
    public var nonEmbeddingParameters: Int {
        layers.reduce(0) { sum, l in
            sum + [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj].reduce(0) { $0 + $1.outFeatures * $1.inFeatures }
        }
    }
}

extension VisionWeights {
    /// Weights multiplied per patch (the ViT blocks and the patch embedding); the mergers work per image
    /// token (a quarter of the patches) and are counted at a quarter of their size.
    public var parameterCount: Int {
        func size(_ w: LinearWeight) -> Int { w.outFeatures * w.inFeatures }
        let blockWeights = blocks.reduce(0) { $0 + size($1.qkv) + size($1.proj) + size($1.fc1) + size($1.fc2) }
        let mergers = ([merger] + deepstackMergers).reduce(0) { $0 + size($1.fc1) + size($1.fc2) }
        return size(patchEmbed) + blockWeights + mergers / 4
    }
}
