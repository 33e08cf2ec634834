import Foundation
import Kernels
import SafeTensors
import Tensors

/// The model as the engine sees it: configuration, vision tower and text decoder, loaded from a
/// Hugging Face model folder (`config.json`, `generation_config.json`, `*.safetensors`). Strings and
/// images stay in `Qwen3VLProcessor`; only token ids, patches and grids reach this type.
public final class Qwen3VLModel: Sendable {
    public let directory: URL
    public let configuration: Qwen3VLConfiguration
    public let generation: GenerationConfiguration
    public let vision: VisionEncoder
    public let text: TextDecoder

    /// The runtime format of the linear layers and the embedding table (norms and biases stay F32).
    public let format: WeightFormat

    /// How the weights were obtained: converted from the checkpoint, or read from the runtime cache.
    public let loadReport: LoadReport

    /// Loads the model, converting linear layers (text and vision) and the embedding table to `format`.
    ///
    /// For the quantized formats the converted weights are saved in the runtime cache
    /// (`RuntimeCacheOptions.environment` by default; nil disables it) and read from there on later
    /// loads of the same files (see `RuntimeCache`). Cache problems never fail the load.
    public init(directory: URL, format: WeightFormat = .f32,
                runtimeCache: RuntimeCacheOptions? = .environment) throws {
        self.format = format
        self.directory = directory
        configuration = try Qwen3VLConfiguration.load(from: directory)
        generation = try GenerationConfiguration.load(from: directory)
        let store = try WeightStore(directory: directory)
        let session = RuntimeCache.begin(store: store, format: format, options: runtimeCache)
        let weights = try Qwen3VLWeights.load(from: store, configuration: configuration, format: format, session: session)
        loadReport = session.finish()
        vision = VisionEncoder(configuration: configuration.vision, weights: weights.vision)
        text = TextDecoder(configuration: configuration.text, weights: weights.text, imageTokenID: configuration.imageTokenID)
    }

    /// Token ids that end generation: generation_config's, else the text config's.
    public var eosTokenIDs: [Int] {
        generation.eosTokenIDs.isEmpty ? configuration.text.eosTokenIDs : generation.eosTokenIDs
    }

    public var mergeSize: Int { configuration.vision.spatialMergeSize }

    /// Runs the vision tower over images given as concatenated patches `[ΣN, C·T·P·P]`.
    public func encodeImages(pixelValues: Tensor, grids: [ImageGrid]) -> VisionFeatures {
        withExtendedLifetime(pixelValues) { vision.encode(pixelValues: pixelValues.data, grids: grids) }
    }

    /// MRoPE positions of a prompt.
    public func positions(for tokens: [Int], grids: [ImageGrid]) throws -> MRoPEPositions {
        try MRoPEPositions.compute(tokens: tokens, imageTokenID: configuration.imageTokenID, grids: grids, mergeSize: mergeSize)
    }
}
