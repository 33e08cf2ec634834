import Foundation
import Qwen3VL

/// Everything `postlens serve` can be told, in one value that tests build too.
public struct ServerConfiguration: Sendable {
    /// The id clients name in `model` and that `GET /v1/models` lists (the model folder's name by default).
    public var modelID: String
    public var host = "127.0.0.1"
    public var port = 8080
    /// Accepted bearer keys; empty = no authentication.
    public var apiKeys: [String] = []
    /// Host names the web page and `/api` answer besides loopback and `host` (`--allowed-host`; "*" = any).
    public var allowedHosts: [String] = []
    /// Web origins allowed to call the server cross-site, with CORS headers (`--cors-origin`); empty = CORS off.
    public var corsOrigins: [String] = []
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
    /// Deepest nesting of arrays and objects in a JSON request body.
    public var maxJSONDepth = 128
    /// Most JSON values (strings, numbers, arrays, objects, …) in one request body.
    public var maxJSONValues = 1_000_000
    /// Largest local image file read, in bytes.
    public var maxImageFileBytes = 40 * 1024 * 1024
    /// Largest decoded image accepted, in pixels (decompression-bomb guard, checked from the header).
    public var maxDecodedPixels = 100_000_000
    /// Most images in one request (`--max-images`).
    public var maxImagesPerRequest = 16
    /// Most pixels all of one request's images may announce together, before resizing (each is decoded in turn, so
    /// this bounds the request's decode time rather than its memory).
    public var maxRequestPixels = 200_000_000
    /// Most content parts (text and image parts; a string content counts one) in one chat request.
    public var maxContentParts = 1_000
    /// `stop`: most strings, and most bytes in one.
    public var maxStopStrings = 16
    public var maxStopStringBytes = 256
    /// Largest `top_k` (the sampler's candidate count; larger values are refused, 0 or -1 turn it off).
    public var maxTopK = 1_000
    /// Most records in one batch upload (`POST /v1/batches`).
    public var maxBatchRecords = 10_000
    /// KV-cache memory all requests in flight may reserve together (`--kv-cache-budget-mb`); nil = unbounded.
    public var kvCacheBudgetBytes: Int? = 8192 << 20
    /// Image-token budget for `detail` `high`/`auto` and for analysis items: caps the preprocessor's `max_pixels`
    /// (`--max-image-tokens`, the same budget as every model-running command's; `ImageTokenBudget`).
    public var maxImageTokens = ImageTokenBudget.defaultMaximum
    /// Image-token budget for `detail: low`.
    public var lowDetailImageTokens = 256
    /// `max_tokens` when the request names none.
    public var defaultMaxTokens = 1024
    /// How long a client may take (`--client-timeout`): to send a complete request head (and between requests on a
    /// keep-alive connection), to send a whole body, and to take each write of a streamed answer. Past it the
    /// connection is closed.
    public var clientTimeout: Duration = .seconds(60)
    /// Largest body the conversation API (`/api`, whose import carries images) accepts.
    public var maxWebBodyBytes = 256 << 20
    /// Seconds suggested in `Retry-After` when the queue is full or the model is loading.
    public var retryAfterSeconds = 2
    /// Batch items the server's own worker runs at once beside chat; 0 leaves batch jobs to `postlens worker`s.
    public var batchConcurrency = 1
    /// After SIGTERM/SIGINT, how long requests in flight may run on before they are cancelled.
    public var shutdownGracePeriod: Duration = .seconds(30)
    /// A model switch (`POST /v1/models/load`): how long requests in flight may finish on the old model before the
    /// new one is loaded anyway (beside the old one, until they end).
    public var modelSwitchDrain: Duration = .seconds(30)

    public init(modelID: String) {
        self.modelID = modelID
    }
}
