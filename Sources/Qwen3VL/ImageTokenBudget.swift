/// How many image tokens one image may become, the one budget every model-running entry point shares
/// (`--max-image-tokens` of `serve`, `ask`, `analyze`, `worker`, `bench`; the server's `detail` budgets).
///
/// One image token covers a 2×2 merge of 16×16 patches, 32×32 pixels; prefill and vision time grow with the
/// token count, so this is the knob that bounds a request's latency on a CPU.
public enum ImageTokenBudget {
    /// Pixels one image token covers (Qwen3-VL: patch 16, merge 2).
    public static let pixelsPerToken = 32 * 32
    /// 1,280 tokens keep one image's prefill within seconds on a 2-core CPU and leave small text legible.
    public static let defaultMaximum = 1280
    /// The fewest tokens a budget may give (a 64×64 image).
    public static let minimum = 4

    /// The pixel budget (`max_pixels`) of `tokens` image tokens.
    public static func pixels(_ tokens: Int) -> Int { tokens * pixelsPerToken }
}
