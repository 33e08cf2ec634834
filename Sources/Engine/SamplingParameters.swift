/// How the next token is chosen. Defaults are neutral (greedy); `Qwen3VLModel.generation`
/// (generation_config.json) supplies the model's recommended values through `GenerationParameters.defaults(for:)`.
public struct SamplingParameters: Sendable, Equatable, Codable {
    /// 0 → greedy (argmax). Logits are divided by it otherwise.
    public var temperature: Double = 0
    /// Keep the k most likely tokens; 0 = off.
    public var topK: Int = 0
    /// Keep the smallest set whose probability reaches p; 1 = off.
    public var topP: Double = 1
    /// Drop tokens whose probability is below `minP ×` the top probability; 0 = off.
    public var minP: Double = 0
    /// HF-style: logits of tokens already in the prompt or output are divided (if > 0) or multiplied
    /// (if < 0) by this; 1 = off.
    public var repetitionPenalty: Double = 1
    /// OpenAI-style: subtract once for every token id already generated; 0 = off.
    public var presencePenalty: Double = 0
    /// OpenAI-style: subtract `count ×` this for every token id already generated; 0 = off.
    public var frequencyPenalty: Double = 0
    /// Seed for reproducible sampling; nil = random.
    public var seed: UInt64?

    public init() {}

    public var isGreedy: Bool { temperature <= 0 || topK == 1 }
}

/// A small, fast, seedable generator (xoshiro256**), so a seed gives the same text on every run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        // SplitMix64 expands the seed into four non-zero words.
        var s = seed
        func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
