import Foundation
import Hummingbird
import JSON
import Logging

/// `GET /v1/models`, `GET /v1/models/{id}` and `POST /v1/models/load`: the models this server offers, in OpenAI's
/// list shape (the served one first), and the operator's switch between them (`ModelHost+Switch.swift`).
///
/// One model is loaded at a time. Each entry says under `postlens.status` whether it is `loaded`, `loading`,
/// `available` (offered with `serve --offer`, not loaded) or `failed`, and under `postlens` what it is (family member,
/// thinking or not, shapes). Ids may hold a slash (`Qwen/Qwen3-VL-4B-Thinking`), so `{id}` is the rest of the path.
struct ModelsController<Context: RequestContext>: Sendable {
    let host: ModelHost
    let configuration: ServerConfiguration

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/models", use: list)
        routes.post("/models/load", use: load)
        routes.get("/models/**", use: show)
        return routes
    }

    struct Model: ResponseEncodable {
        let id: String
        let object = "model"
        let created: Int
        let ownedBy = "postlens"
        let postlens: Info
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", postlens }
    }

    /// `status`, then what the model is (`ServedModel`'s fields; absent for a stand-in engine without a folder).
    struct Info: Encodable {
        let status: String
        let description: ServedModel?
        enum CodingKeys: String, CodingKey { case status }
        func encode(to encoder: Encoder) throws {
            try description?.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(status, forKey: .status)
        }
    }

    struct ModelList: ResponseEncodable {
        let object = "list"
        let data: [Model]
    }

    private var models: [Model] {
        let (served, state) = host.snapshot
        let created = Int(host.startedAt.timeIntervalSince1970)
        let servedStatus = switch state {
        case .loading: "loading"
        case .ready: "loaded"
        case .failed: "failed"
        }
        let entries = host.choices.map { choice in
            Model(id: choice.id, created: created,
                  postlens: Info(status: choice.id == served.id ? servedStatus : "available", description: choice.description.map(ServedModel.init)))
        }
        return entries.filter { $0.id == served.id } + entries.filter { $0.id != served.id }
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> ModelList {
        ModelList(data: models)
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Model {
        let id = context.parameters.getCatchAll().joined(separator: "/")
        guard let model = models.first(where: { $0.id == id }) else { throw ServerError.unknownModel(id) }
        return model
    }

    /// `{"model": ID}` → 202 `{"model", "status": "loading", "previous"}` when the switch started, 200
    /// `{"model", "status": "loaded"}` when that model is already served; 404 for an id not offered, 409 when a
    /// switch cannot start now (the message says why).
    @Sendable func load(_ request: Request, context: Context) async throws -> Response {
        let body = try await readBody(request, context: context, limit: 64 * 1024, timeout: configuration.clientTimeout)
        let object = try parseJSONObjectBody(Data(buffer: body), limits: configuration.requestJSONLimits)
        guard let id = object["model"]?.stringValue, !id.isEmpty else {
            throw ServerError.invalidRequest("send {\"model\": ID}, an id GET /v1/models lists", param: "model")
        }
        let previous = host.modelID
        let outcome = try host.switchModel(to: id, drainLimit: configuration.modelSwitchDrain, logger: context.logger)
        var answer: JSONObject = ["model": .string(id)]
        switch outcome {
        case .alreadyServed:
            answer["status"] = "loaded"
        case .started:
            answer["status"] = "loading"
            answer["previous"] = .string(previous)
        }
        return jsonResponse(.object(answer), status: outcome == .started ? .accepted : .ok)
    }
}
