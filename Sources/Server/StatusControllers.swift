import Foundation
import Kernels
import Qwen3VL
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
        /// PostLens's description of the served checkpoint (`ServedModel`); absent for a stand-in engine.
        let postlens: ServedModel?
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", postlens }
    }

    struct ModelList: ResponseEncodable {
        let object = "list"
        let data: [Model]
    }

    private var model: Model {
        Model(id: host.modelID, created: Int(host.startedAt.timeIntervalSince1970), postlens: host.description.map(ServedModel.init))
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> ModelList {
        ModelList(data: [model])
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Model {
        let id = try context.parameters.require("id")
        guard id == host.modelID else { throw ServerError.unknownModel(id) }
        return model
    }
}

/// `GET /health`: whether the model is loaded, without authentication (for load balancers and scripts).
struct HealthController<Context: RequestContext>: Sendable {
    let host: ModelHost
    let gate: AdmissionGate

    struct Health: ResponseEncodable {
        /// `loading`, `ready` or `failed`.
        let status: String
        let model: String
        let uptimeSeconds: Double
        let inFlight: Int
        let maxQueue: Int
        /// The kernels' instruction-set level (`portable`, `avx2`, `avx512`, `amx`) and the CPU.
        let isaLevel: String
        let cpu: String
        let error: String?
        /// What is served (for the page, which may not hold the API key /v1/models wants).
        let modelInfo: ServedModel?
        enum CodingKeys: String, CodingKey {
            case status, model, error, cpu, uptimeSeconds = "uptime_s", inFlight = "in_flight", maxQueue = "max_queue",
                 isaLevel = "isa_level", modelInfo = "model_info"
        }
    }

    func register(on router: Router<Context>) {
        router.get("/health", use: health)
    }

    @Sendable func health(_ request: Request, context: Context) async throws -> Response {
        let status: String, error: String?
        switch host.current {
        case .loading: (status, error) = ("loading", nil)
        case .ready: (status, error) = ("ready", nil)
        case .failed(let reason): (status, error) = ("failed", reason)
        }
        let body = Health(status: status, model: host.modelID,
                          uptimeSeconds: (Date().timeIntervalSince(host.startedAt) * 10).rounded() / 10,
                          inFlight: gate.inFlight, maxQueue: gate.limit, isaLevel: KernelDispatch.level.description,
                          cpu: CPUFeatures.host.brand, error: error, modelInfo: host.description.map(ServedModel.init))
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
