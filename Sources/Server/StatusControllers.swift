import Foundation
import Kernels
import Hummingbird

/// `GET /v1/models` and `GET /v1/models/{id}`: the one served model, in OpenAI's list shape.
struct ModelsController<Context: RequestContext>: Sendable {
    let host: ModelHost

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/models", use: list)
        routes.get("/models/{id}", use: show)
        return routes
    }

    struct Model: ResponseEncodable {
        let id: String
        let object = "model"
        let created: Int
        let ownedBy = "postlens"
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
    }

    struct ModelList: ResponseEncodable {
        let object = "list"
        let data: [Model]
    }

    private var model: Model { Model(id: host.modelID, created: Int(host.startedAt.timeIntervalSince1970)) }

    @Sendable func list(_ request: Request, context: Context) async throws -> ModelList {
        ModelList(data: [model])
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Model {
        let id = try context.parameters.require("id")
        guard id == host.modelID else { throw ServerError.unknownModel(id) }
        return model
    }
}

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
        let loading: Loading?
        let error: String?
        enum CodingKeys: String, CodingKey {
            case status, model, error, cpu, loading, uptimeSeconds = "uptime_s", inFlight = "in_flight", maxQueue = "max_queue",
                 isaLevel = "isa_level", maxImagePixels = "max_image_pixels"
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
        switch host.current {
        case .loading(let progress): (status, error, loading) = ("loading", nil, Loading(progress))
        case .ready: (status, error, loading) = ("ready", nil, nil)
        case .failed(let reason): (status, error, loading) = ("failed", reason, nil)
        }
        let body = Health(status: status, model: host.modelID,
                          uptimeSeconds: (Date().timeIntervalSince(host.startedAt) * 10).rounded() / 10,
                          inFlight: gate.inFlight, maxQueue: gate.limit, maxImagePixels: maxImagePixels,
                          isaLevel: KernelDispatch.level.description, cpu: CPUFeatures.host.brand, loading: loading, error: error)
        // 200 only when ready, so `curl -f` and load balancers can wait on it; the body says why otherwise.
        var response = try body.response(from: request, context: context)
        if status != "ready" { response.status = .serviceUnavailable }
        return response
    }
}
