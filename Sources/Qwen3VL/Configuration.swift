import Foundation

/// Hyper-parameters of Qwen3-VL, decoded once from `config.json` (spec §1.1). Every value the engine
/// uses is read from the file: the reference classes' defaults describe a different model size.
public struct Qwen3VLConfiguration: Sendable, Equatable {
    public var text: TextConfiguration
    public var vision: VisionConfiguration
    /// `<|image_pad|>`: rows replaced by vision features.
    public var imageTokenID: Int
    public var videoTokenID: Int
    public var visionStartTokenID: Int
    public var visionEndTokenID: Int
    public var tieWordEmbeddings: Bool

    public static func load(from directory: URL) throws -> Qwen3VLConfiguration {
        try Qwen3VLConfiguration(JSONFields.load(directory.appendingPathComponent("config.json")))
    }

    public init(jsonData: Data, file: String = "config.json") throws {
        try self.init(JSONFields(file: file, data: jsonData))
    }

    init(_ json: JSONFields) throws {
        if let type = try json.optionalString("model_type"), type == "qwen3_vl_moe" {
            throw ConfigurationError.invalidValue(file: json.file, key: "model_type", reason: "'qwen3_vl_moe' is a mixture-of-experts Qwen3-VL "
                + "(30B-A3B, 235B-A22B), which PostLens does not run; use a dense model: 2B, 4B or 8B, Instruct or Thinking")
        }
        if let type = try json.optionalString("model_type"), type != "qwen3_vl" {
            throw ConfigurationError.invalidValue(file: json.file, key: "model_type", reason: "'\(type)' is not qwen3_vl; PostLens runs Qwen3-VL checkpoints")
        }
        text = try TextConfiguration(json.nested("text_config"))
        vision = try VisionConfiguration(json.nested("vision_config"))
        imageTokenID = try json.int("image_token_id")
        videoTokenID = try json.optionalInt("video_token_id") ?? imageTokenID + 1
        visionStartTokenID = try json.int("vision_start_token_id")
        visionEndTokenID = try json.int("vision_end_token_id")
        let textConfig = try json.nested("text_config")
        tieWordEmbeddings = try json.optionalBool("tie_word_embeddings") ?? textConfig.optionalBool("tie_word_embeddings") ?? false
        guard vision.outHiddenSize == text.hiddenSize else {
            throw ConfigurationError.invalidValue(file: json.file, key: "vision_config.out_hidden_size",
                                                  reason: "\(vision.outHiddenSize) must equal text_config.hidden_size \(text.hiddenSize)")
        }
        for id in [imageTokenID, visionStartTokenID, visionEndTokenID] where id < 0 || id >= text.vocabSize {
            throw ConfigurationError.invalidValue(file: json.file, key: "image_token_id", reason: "token id \(id) is outside the vocabulary of \(text.vocabSize)")
        }
    }
}

/// The Qwen3 language model (spec §4.1).
public struct TextConfiguration: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    /// Frequency slots per axis (T, H, W); sums to headDim / 2. Interleaved as in spec §4.3.
    public var mropeSection: [Int]
    public var maxPositionEmbeddings: Int
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]

    init(_ json: JSONFields) throws {
        vocabSize = try json.int("vocab_size")
        hiddenSize = try json.int("hidden_size")
        layerCount = try json.int("num_hidden_layers")
        headCount = try json.int("num_attention_heads")
        kvHeadCount = try json.optionalInt("num_key_value_heads") ?? headCount
        headDim = try json.optionalInt("head_dim") ?? hiddenSize / headCount
        intermediateSize = try json.int("intermediate_size")
        rmsNormEps = Float(try json.optionalDouble("rms_norm_eps") ?? 1e-6)
        // transformers < 5 writes rope_theta + rope_scaling; >= 5 writes rope_parameters. Accept both.
        let scaling = try json.optionalNested("rope_scaling")
        let parameters = try json.optionalNested("rope_parameters")
        guard let theta = try json.optionalDouble("rope_theta") ?? parameters?.optionalDouble("rope_theta") ?? scaling?.optionalDouble("rope_theta") else {
            throw ConfigurationError.missingKey(file: json.file, key: json.keyPath("rope_theta"))
        }
        ropeTheta = theta
        guard let section = try parameters?.optionalInts("mrope_section") ?? scaling?.optionalInts("mrope_section") else {
            throw ConfigurationError.missingKey(file: json.file, key: json.keyPath("rope_scaling.mrope_section"))
        }
        mropeSection = section
        maxPositionEmbeddings = try json.optionalInt("max_position_embeddings") ?? 262_144
        bosTokenID = try json.optionalInt("bos_token_id")
        eosTokenIDs = try json.optionalInts("eos_token_id") ?? []
        if let act = try json.optionalString("hidden_act"), act != "silu" {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("hidden_act"), reason: "'\(act)' is not supported (Qwen3 uses silu)")
        }
        if try json.optionalBool("attention_bias") == true {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("attention_bias"), reason: "attention biases are not part of Qwen3-VL")
        }
        guard mropeSection.count == 3, mropeSection.reduce(0, +) == headDim / 2, headDim % 2 == 0 else {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("mrope_section"),
                                                  reason: "\(mropeSection) must have 3 entries summing to head_dim/2 = \(headDim / 2)")
        }
        guard headCount % kvHeadCount == 0 else {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("num_key_value_heads"),
                                                  reason: "\(kvHeadCount) does not divide num_attention_heads \(headCount)")
        }
    }
}

/// The ViT with DeepStack (spec §3).
public struct VisionConfiguration: Sendable, Equatable {
    public var depth: Int
    public var hiddenSize: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var patchSize: Int
    public var temporalPatchSize: Int
    public var spatialMergeSize: Int
    public var inChannels: Int
    public var outHiddenSize: Int
    public var positionEmbeddingCount: Int
    public var deepstackIndexes: [Int]
    public var layerNormEps: Float = 1e-6
    public var ropeTheta: Double

    public var headDim: Int { hiddenSize / headCount }
    /// Side of the learned square position table (48 for 2304 entries).
    public var positionGridSide: Int { Int(Double(positionEmbeddingCount).squareRoot().rounded()) }
    /// Values per patch row in pixel_values: C · T · P · P (1536).
    public var patchInputSize: Int { inChannels * temporalPatchSize * patchSize * patchSize }
    public var mergeUnit: Int { spatialMergeSize * spatialMergeSize }

    init(_ json: JSONFields) throws {
        depth = try json.int("depth")
        hiddenSize = try json.int("hidden_size")
        headCount = try json.int("num_heads")
        intermediateSize = try json.int("intermediate_size")
        patchSize = try json.int("patch_size")
        temporalPatchSize = try json.optionalInt("temporal_patch_size") ?? 2
        spatialMergeSize = try json.optionalInt("spatial_merge_size") ?? 2
        inChannels = try json.optionalInt("in_channels") ?? 3
        outHiddenSize = try json.int("out_hidden_size")
        positionEmbeddingCount = try json.int("num_position_embeddings")
        deepstackIndexes = try json.optionalInts("deepstack_visual_indexes") ?? []
        let parameters = try json.optionalNested("rope_parameters")
        ropeTheta = try parameters?.optionalDouble("rope_theta") ?? 10_000
        if let act = try json.optionalString("hidden_act"), act != "gelu_pytorch_tanh" {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("hidden_act"), reason: "'\(act)' is not supported (Qwen3-VL's ViT uses gelu_pytorch_tanh)")
        }
        guard hiddenSize % headCount == 0, (hiddenSize / headCount) % 4 == 0 else {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("num_heads"), reason: "head dim must be a multiple of 4 for 2D rotary")
        }
        let side = Int(Double(positionEmbeddingCount).squareRoot().rounded())
        guard side * side == positionEmbeddingCount, side >= 1 else {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("num_position_embeddings"), reason: "\(positionEmbeddingCount) is not a square")
        }
        for index in deepstackIndexes where index < 0 || index >= depth {
            throw ConfigurationError.invalidValue(file: json.file, key: json.keyPath("deepstack_visual_indexes"), reason: "\(index) is outside 0..<\(depth)")
        }
    }
}

/// Defaults for sampling, from `generation_config.json` (spec §7). All fields optional.
public struct GenerationConfiguration: Sendable, Equatable {
    public var eosTokenIDs: [Int] = []
    public var bosTokenID: Int?
    public var padTokenID: Int?
    public var doSample: Bool = false
    public var temperature: Double = 1.0
    public var topK: Int = 0
    public var topP: Double = 1.0
    public var repetitionPenalty: Double = 1.0

    public init() {}

    public static func load(from directory: URL) throws -> GenerationConfiguration {
        let url = directory.appendingPathComponent("generation_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return GenerationConfiguration() }
        let json = try JSONFields.load(url)
        var config = GenerationConfiguration()
        config.eosTokenIDs = try json.optionalInts("eos_token_id") ?? []
        config.bosTokenID = try json.optionalInt("bos_token_id")
        config.padTokenID = try json.optionalInt("pad_token_id")
        config.doSample = try json.optionalBool("do_sample") ?? false
        config.temperature = try json.optionalDouble("temperature") ?? 1.0
        config.topK = try json.optionalInt("top_k") ?? 0
        config.topP = try json.optionalDouble("top_p") ?? 1.0
        config.repetitionPenalty = try json.optionalDouble("repetition_penalty") ?? 1.0
        return config
    }
}
