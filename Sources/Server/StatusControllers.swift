import Engine
import Foundation
import Kernels
import Qwen3VL
import Hummingbird

/// `GET /health`: whether the model is loaded, without authentication (for load balancers, scripts and the web page).
/// While the model is still downloading or being read the answer is 503 with `status: "loading"` and a `loading`
/// object saying how far it has come.
struct HealthController<Context: RequestContext>: Sendable {
    let host: ModelHost
    let gate: AdmissionGate
    /// The pixel budget of one image (`--max-image-tokens`): the page downscales larger images before upload.
    let maxImagePixels: Int

    struct Health: ResponseEncodable {
        /// `loading`, `ready` or `failed`.
        let status: String
        let model: String
        let uptimeSeconds: Double
        let inFlight: Int
        let maxQueue: Int
        let maxImagePixels: Int
        /// The kernels' instruction-set level (`portable`, `avx2`, `avx512`, `amx`) and the CPU.
        let isaLevel: String
        let cpu: String
        /// While loading: how far it has come.
        let loading: Loading?
        let error: String?
        /// Why the last model switch did not happen (the picked model failed to load; the previous one is served again).
        let switchError: String?
        /// What is served (for the page, which may not hold the API key /v1/models wants); absent while it downloads.
        let modelInfo: ServedModel?
        /// The KV caches once the model is ready: element, bytes per cached token, the budget and what is reserved
        /// of it (sizing `--kv-cache-budget-mb`).
        let kvCache: KVCache?
        enum CodingKeys: String, CodingKey {
            case status, model, error, cpu, loading, uptimeSeconds = "uptime_s", inFlight = "in_flight", maxQueue = "max_queue",
                 isaLevel = "isa_level", modelInfo = "model_info", switchError = "switch_error", maxImagePixels = "max_image_pixels",
                 kvCache = "kv_cache"
        }
    }

    /// `{element: f32|bf16, bytes_per_token, budget_bytes (absent: unbounded), reserved_bytes}`.
    struct KVCache: Encodable {
        let element: String
        let bytesPerToken: Int
        let budgetBytes: Int?
        let reservedBytes: Int
        enum CodingKeys: String, CodingKey {
            case element, bytesPerToken = "bytes_per_token", budgetBytes = "budget_bytes", reservedBytes = "reserved_bytes"
        }

        init?(_ statistics: InferenceEngine.KVCacheStatistics?) {
            guard let statistics else { return nil }
            element = statistics.element.rawValue
            bytesPerToken = statistics.bytesPerToken
            budgetBytes = statistics.budgetBytes
            reservedBytes = statistics.reservedBytes
        }
    }

    /// `{phase: starting|downloading|reading, completed_bytes, total_bytes, fraction, file}`.
    struct Loading: Encodable {
        let phase: String
        let completedBytes: Int64
        let totalBytes: Int64
        let fraction: Double?
        let file: String?
        enum CodingKeys: String, CodingKey {
            case phase, fraction, file, completedBytes = "completed_bytes", totalBytes = "total_bytes"
        }

        init(_ progress: LoadingProgress) {
            phase = progress.phase.rawValue
            completedBytes = progress.completedBytes
            totalBytes = progress.totalBytes
            fraction = progress.totalBytes > 0
                ? (min(1, Double(progress.completedBytes) / Double(progress.totalBytes)) * 1000).rounded() / 1000 : nil
            file = progress.file
        }
    }

    func register(on router: Router<Context>) {
        router.get("/health", use: health)
    }

    @Sendable func health(_ request: Request, context: Context) async throws -> Response {
        let status: String, error: String?, loading: Loading?
        var kvCache: KVCache?
        let (served, state) = host.snapshot
        switch state {
        case .loading(let progress): (status, error, loading) = ("loading", nil, Loading(progress))
        case .ready(let engine):
            (status, error, loading) = ("ready", nil, nil)
            kvCache = KVCache(engine.engineStatistics?.kvCache)
        case .failed(let reason): (status, error, loading) = ("failed", reason, nil)
        }
        let body = Health(status: status, model: served.id,
                          uptimeSeconds: (Date().timeIntervalSince(host.startedAt) * 10).rounded() / 10,
                          inFlight: gate.inFlight, maxQueue: gate.limit, maxImagePixels: maxImagePixels,
                          isaLevel: KernelDispatch.level.description, cpu: CPUFeatures.host.brand, loading: loading, error: error,
                          switchError: host.switchError, modelInfo: served.description.map(ServedModel.init), kvCache: kvCache)
        // 200 only when ready, so `curl -f` and load balancers can wait on it; the body says why otherwise.
        var response = try body.response(from: request, context: context)
        if status != "ready" { response.status = .serviceUnavailable }
        return response
    }
}

/// The served model as `/v1/models` (`postlens`) and `/health` (`model_info`) describe it.
struct ServedModel: Encodable, Sendable {
    /// `Qwen3-VL-4B-Thinking`; `Qwen3-VL` for shapes that match no published size.
    let name: String
    let size: String?
    /// `instruct` or `thinking`: whether answers carry `reasoning_content`.
    let variant: String
    let thinking: Bool
    let vision: Vision
    let text: Text

    struct Vision: Encodable, Sendable {
        let depth: Int, hiddenSize: Int, headDim: Int, deepstackLayers: [Int]
        enum CodingKeys: String, CodingKey { case depth, hiddenSize = "hidden_size", headDim = "head_dim", deepstackLayers = "deepstack_layers" }
    }

    struct Text: Encodable, Sendable {
        let layers: Int, hiddenSize: Int, heads: Int, kvHeads: Int, tiedEmbeddings: Bool
        enum CodingKeys: String, CodingKey {
            case layers, hiddenSize = "hidden_size", heads, kvHeads = "kv_heads", tiedEmbeddings = "tied_embeddings"
        }
    }

    init(_ d: ModelDescription) {
        name = d.name
        size = d.size
        variant = d.template.rawValue
        thinking = d.thinking
        vision = Vision(depth: d.visionDepth, hiddenSize: d.visionHiddenSize, headDim: d.visionHeadDim, deepstackLayers: d.deepstackLayers)
        text = Text(layers: d.textLayers, hiddenSize: d.textHiddenSize, heads: d.textHeads, kvHeads: d.textKVHeads,
                    tiedEmbeddings: d.tiedEmbeddings)
    }
}
