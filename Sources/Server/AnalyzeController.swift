import Analysis
import Engine
import Foundation
import JSON
import Hummingbird
import Imaging
import Logging
import Qwen3VL

/// `POST /v1/analyze`: one analysis task (module `Analysis`, the same tasks as `postlens analyze`) on one post:
/// `{task, images, text, options}` → `{task, result, error, raw, usage, timings}`.
///
/// Request problems (unknown task, bad options, bad schema, undecodable image) are refused with 4xx naming the field;
/// everything that goes wrong once the model runs (output not JSON, not schema-shaped, cut at `max_tokens`, prompt
/// too long) is the item's `error` in a 200 answer, exactly as a batch records it.
struct AnalyzeController<Context: ConnectionContext>: Sendable {
    let host: ModelHost
    let configuration: ServerConfiguration
    let gate: AdmissionGate
    let images: ImageSource
    /// Cancel a request whose client goes away (see `ConnectionWatchers`).
    let connections: ConnectionWatchers

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("/analyze", use: analyze)
        return routes
    }

    @Sendable func analyze(_ request: Request, context: Context) async throws -> Response {
        let (engine, served) = try host.ready()
        let body = try await readBody(request, context: context, limit: configuration.maxBodyBytes, timeout: configuration.clientTimeout)
        let limits = configuration.requestJSONLimits
        let object = try await Offload.run { try parseJSONObjectBody(Data(buffer: body, byteTransferStrategy: .noCopy), limits: limits) }
        for key in object.keys where !["task", "images", "text", "options"].contains(key) {
            throw ServerError.invalidRequest("unknown field '\(key)'; the body is {task, images, text, options}", param: key)
        }
        let options: JSONObject
        switch object["options"] {
        case nil, .null?: options = [:]
        case .object(let o)?: options = o
        default: throw ServerError.invalidRequest("'options' must be an object", param: "options")
        }
        let spec = try await Offload.run { [configuration] in
            try TaskSpec.parse(task: object["task"], options: options, paramPrefix: "options.", fromQuery: false, configuration: configuration)
        }

        let text: String?
        switch object["text"] {
        case nil, .null?: text = nil
        case .string(let s)?: text = s.isEmpty ? nil : s
        default: throw ServerError.invalidRequest("'text' must be a string", param: "text")
        }
        let urls: [String]
        switch object["images"] {
        case nil, .null?: urls = []
        case .string(let s)?: urls = [s]
        case .array(let list)?:
            urls = try list.enumerated().map { index, value in
                guard let s = value.stringValue else {
                    throw ServerError.invalidRequest("'images[\(index)]' must be a string (a data: URL or a local path)", param: "images[\(index)]")
                }
                return s
            }
        default: throw ServerError.invalidRequest("'images' must be an array of strings", param: "images")
        }
        guard urls.count <= 1 else {
            throw ServerError.invalidRequest("'images': the analysis tasks read one image per post; send at most one", param: "images")
        }
        guard !urls.isEmpty || text != nil else {
            throw ServerError.invalidRequest("send an image in 'images', a 'text', or both", param: "text")
        }

        guard let ticket = gate.enter() else { throw ServerError.queueFull(limit: gate.limit) }
        // A client that goes away from here on cancels the work at the engine's next step.
        let logger = context.logger
        return try await connections.cancellingOnDisconnect(of: context) { [self] in
            defer { withExtendedLifetime(ticket) {} }
            return try await run(spec, text: text, imageURL: urls.first, engine: engine, served: served, logger: logger)
        }
    }

    private func run(_ spec: TaskSpec, text: String?, imageURL: String?, engine: any ChatEngine, served: String,
                     logger: Logger) async throws -> Response {
        // The image is read and decoded here (same forms and rules as chat: data: URLs, local files under
        // --allow-image-dir), so an undecodable one is a 422; the task runner takes the decoded pixels.
        var image: RGBImage?
        if let url = imageURL {
            let bytes = try images.bytes(url, param: "images[0]")
            let maxPixels = images.maxPixels
            image = try await Offload.run {
                do {
                    return try ImageDecoder.decode(bytes, maxPixels: maxPixels)
                } catch let error as ImageError {
                    throw ServerError.image(error, param: "images[0]")
                }
            }
        }

        let runner = TaskRunner(task: spec.task, analyzer: EngineAnalyzer(engine: engine), options: spec.options,
                                baseParameters: engine.defaultParameters)
        let outcome = await runner.run(PostRecord(id: "request", image: image == nil ? nil : "images[0]", text: text, meta: nil),
                                       image: image)
        let calls = outcome.calls

        var out: JSONObject = [:]
        out["task"] = .string(spec.task.versionTag)
        out["model"] = .string(served)
        out["result"] = outcome.result ?? .null
        out["error"] = .optional(outcome.error)
        out["raw"] = calls.isEmpty ? .null : .string(calls.map(\.text).joined(separator: "\n"))
        out["finish_reason"] = .optional(calls.last?.finishReason.rawValue)
        out["usage"] = usageJSON(outcome.usage)
        out["timings"] = timingsJSON(calls, totalSeconds: outcome.seconds)
        logger.info("analyze", metadata: [
            "task": "\(spec.task.versionTag)", "ok": "\(outcome.ok)", "calls": "\(calls.count)",
            "completion_tokens": "\(outcome.usage.completionTokens)", "ms": "\(Int(outcome.seconds * 1000))",
        ])
        return jsonResponse(.object(out))
    }
}

// MARK: - Shared by /v1/analyze and /v1/batches

extension TaskSpec {
    /// `TaskSpec.parse` (module Analysis) with this server's budgets, a refusal answered 400 naming the field.
    /// `paramPrefix` is how the options are named (`options.` in the JSON body, nothing in a query string).
    static func parse(task taskValue: JSONValue?, options: JSONObject, paramPrefix: String, fromQuery: Bool,
                      configuration: ServerConfiguration) throws -> TaskSpec {
        var defaults = RunOptions()
        defaults.maxTokens = configuration.defaultMaxTokens
        defaults.maxPixels = ImageTokenBudget.pixels(configuration.maxImageTokens)
        defaults.maxImageBytes = configuration.maxImageFileBytes
        do {
            return try TaskSpec.parse(task: taskValue, options: options, fromQuery: fromQuery, defaults: defaults)
        } catch let error as JobSpec.OptionError {
            let (param, message) = error.named(prefix: paramPrefix)
            throw ServerError.invalidRequest(message, param: param)
        }
    }
}

/// The body as a JSON object, with the chat API's errors for bodies that are not UTF-8 or not JSON.
func parseJSONObjectBody(_ data: Data, limits: JSONParser.Limits) throws -> JSONObject {
    let value = try RequestJSON.parse(data, limits: limits, what: "the body")
    guard case .object(let object) = value else { throw ServerError.invalidRequest("the body must be a JSON object", param: nil) }
    return object
}

func usageJSON(_ usage: Usage) -> JSONValue {
    [
        "prompt_tokens": JSONValue(Double(usage.promptTokens)), "completion_tokens": JSONValue(Double(usage.completionTokens)),
        "total_tokens": JSONValue(Double(usage.totalTokens)), "image_tokens": JSONValue(Double(usage.imageTokens)),
        "cached_tokens": JSONValue(Double(usage.cachedPromptTokens)),
    ]
}

/// Milliseconds per phase summed over the item's engine calls; `ttft_ms` is the first call's.
func timingsJSON(_ results: [AnalyzerResponse], totalSeconds: Double) -> JSONValue {
    func ms(_ v: Double) -> JSONValue { JSONValue((v * 10).rounded() / 10) }
    var t = Timings()
    for r in results {
        t.preprocessMs += r.timings.preprocessMs
        t.visionMs += r.timings.visionMs
        t.prefillMs += r.timings.prefillMs
        t.decodeMs += r.timings.decodeMs
        t.grammarMs += r.timings.grammarMs
        t.decodeTokens += r.timings.decodeTokens
    }
    return [
        "total_ms": ms(totalSeconds * 1000), "preprocess_ms": ms(t.preprocessMs), "vision_ms": ms(t.visionMs),
        "prefill_ms": ms(t.prefillMs), "decode_ms": ms(t.decodeMs), "grammar_ms": ms(t.grammarMs),
        "ttft_ms": ms(results.first?.timings.timeToFirstTokenMs ?? 0),
        "decode_tokens_per_s": ms(t.decodeTokensPerSecond), "model_calls": JSONValue(Double(results.count)),
    ]
}

func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: value.sortedText)))
}
