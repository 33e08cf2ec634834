import Foundation

/// Everything `postlens serve` can be told, in one value that tests build too.
public struct ServerConfiguration: Sendable {
    /// The id clients name in `model` and that `GET /v1/models` lists (the model folder's name by default).
    public var modelID: String
    public var host = "127.0.0.1"
    public var port = 8080
    /// Accepted bearer keys; empty = no authentication.
    public var apiKeys: [String] = []
    /// Most chat requests admitted at once (running + waiting for the engine); more get 429.
    public var maxQueue = 8
    /// The folder under which `image_url` may name local files (`/path` or `file://`); nil = local files refused.
    public var allowedImageDirectory: URL?
    /// Fetch `http(s)` image URLs (`--allow-remote-images`); private and loopback hosts stay refused.
    public var allowRemoteImages = false
    /// Tests only: allow remote image hosts on private/loopback addresses.
    public var allowPrivateImageHosts = false
    /// Largest request body accepted, in bytes (base64 images included).
    public var maxBodyBytes = 40 * 1024 * 1024
    /// Largest local image file read, in bytes.
    public var maxImageFileBytes = 40 * 1024 * 1024
    /// Largest decoded image accepted, in pixels (decompression-bomb guard, checked from the header).
    public var maxDecodedPixels = 100_000_000
    /// Image-token budget for `detail` `high`/`auto`: caps the preprocessor's `max_pixels` (one token = 32×32 pixels).
    /// 1,280 tokens keep one image's prefill within seconds on a 2-core CPU.
    public var maxImageTokens = 1280
    /// Image-token budget for `detail: low`.
    public var lowDetailImageTokens = 256
    /// `max_tokens` when the request names none.
    public var defaultMaxTokens = 1024
    /// Seconds suggested in `Retry-After` when the queue is full or the model is loading.
    public var retryAfterSeconds = 2
    /// Batch items the server's own worker runs at once beside chat; 0 leaves batch jobs to `postlens worker`s.
    public var batchConcurrency = 1
    /// After SIGTERM/SIGINT, how long requests in flight may run on before they are cancelled.
    public var shutdownGracePeriod: Duration = .seconds(30)

    public init(modelID: String) {
        self.modelID = modelID
    }

    /// Pixels covered by one image token (a 2×2 merge of 16×16 patches).
    static let pixelsPerImageToken = 32 * 32
}
