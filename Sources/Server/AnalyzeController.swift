import Analysis
import Engine
import Foundation
import JSON
import Hummingbird
import Imaging
import Logging
import Qwen3VL
import Synchronization

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
        // The image is checked here (same forms and rules as chat: data: URLs, local files under --allow-image-dir) so
        // an undecodable one is a 422; the task runner then reads it from a private temporary copy.
        var imageFile: URL?
        defer { if let imageFile { try? FileManager.default.removeItem(at: imageFile) } }
        if let url = imageURL {
            let bytes = try images.bytes(url, param: "images[0]")
            let maxPixels = images.maxPixels
            try await Offload.run {
                do {
                    _ = try ImageDecoder.decode(bytes, maxPixels: maxPixels)
                } catch let error as ImageError {
                    throw ServerError.image(error, param: "images[0]")
                }
            }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-analyze-\(UUID().uuidString).img")
            try bytes.write(to: file)
            imageFile = file
        }

        let calls = CallLog()
        let analyzer = ServerAnalyzer(engine: engine, log: calls, shielded: false)
        // The image is the private copy made above, after ImageSource's checks: a path the server wrote itself.
        var options = spec.options
        options.trustInput = true
        let runner = TaskRunner(task: spec.task, analyzer: analyzer, options: options, baseParameters: engine.defaultParameters)
        let record = PostRecord(id: "request", image: imageFile?.path, text: text, meta: nil)
        let outcome = await runner.run(record)
        let results = calls.results

        var out: JSONObject = [:]
        out["task"] = .string(spec.task.versionTag)
        out["model"] = .string(served)
        out["result"] = outcome.result ?? .null
        out["error"] = .optional(outcome.error.map { scrub($0, imageFile: imageFile) })
        out["raw"] = results.isEmpty ? .null : .string(results.map(\.text).joined(separator: "\n"))
        out["finish_reason"] = .optional(results.last?.finishReason.rawValue)
        out["usage"] = usageJSON(outcome.usage)
        out["timings"] = timingsJSON(results, totalSeconds: outcome.seconds)
        logger.info("analyze", metadata: [
            "task": "\(spec.task.versionTag)", "ok": "\(outcome.ok)", "calls": "\(results.count)",
            "completion_tokens": "\(outcome.usage.completionTokens)", "ms": "\(Int(outcome.seconds * 1000))",
        ])
        return jsonResponse(.object(out))
    }

    /// The item's error without the server's temporary file name.
    private func scrub(_ message: String, imageFile: URL?) -> String {
        guard let imageFile else { return message }
        return message.replacingOccurrences(of: imageFile.path, with: "images[0]")
    }
}

// MARK: - Shared by /v1/analyze and /v1/batches

/// A task with its run options, from a request's `task` and `options` (or a batch upload's query parameters).
struct TaskSpec: Sendable {
    var task: AnalysisTask
    var options: RunOptions
    /// The stored form (what a batch job keeps).
    var spec: JobSpec

    static let optionKeys: Set<String> = ["language", "max_tokens", "dense", "instruction", "schema"]

    /// `paramPrefix` is how the options are named in errors (`options.` for the JSON body, nothing for a query);
    /// `fromQuery`: values arrive as strings (`max_tokens=64`, `dense=true`, `schema={...}`). The rules are
    /// `JobSpec.parse`'s (module Analysis); the server adds its own budgets.
    static func parse(task taskValue: JSONValue?, options: JSONObject, paramPrefix: String, fromQuery: Bool,
                      configuration: ServerConfiguration) throws -> TaskSpec {
        var defaults = RunOptions()
        defaults.maxTokens = configuration.defaultMaxTokens
        defaults.maxPixels = min(1024 * 1024, configuration.maxImageTokens * ServerConfiguration.pixelsPerImageToken)
        defaults.maxImageBytes = configuration.maxImageFileBytes
        let spec: JobSpec
        do {
            spec = try JobSpec.parse(task: taskValue, options: options, defaults: defaults, allowed: optionKeys, fromQuery: fromQuery)
        } catch let error as JobSpec.OptionError {
            let param = error.key == "task" ? "task" : paramPrefix + error.key
            let message = error.key == "task" && error.rule.hasPrefix("is required")
                ? "missing required field 'task' (\(error.rule.dropFirst("is required (".count).dropLast()))"
                : "'\(param)' \(error.rule)"
            throw ServerError.invalidRequest(message, param: param)
        }
        return TaskSpec(task: try spec.makeTask(), options: spec.runOptions(), spec: spec)
    }
}

/// The engine calls of one item (several for dense OCR), for `raw`, `finish_reason` and `timings`.
final class CallLog: Sendable {
    private let list = Mutex<[GenerationResult]>([])
    func append(_ result: GenerationResult) { list.withLock { $0.append(result) } }
    var results: [GenerationResult] { list.withLock { $0 } }
}

/// The task runner's model call over the server's engine. `shielded`: the call runs in its own task, so cancelling
/// the caller (a batch being cancelled) lets the item in flight finish and stops before the next one.
///
/// With a `gate` (batch jobs), each call first waits for a place among the `--max-queue` requests in flight, and a
/// call the engine turns away because the KV budget is in use waits and tries again: batch items share the chat
/// API's admission limits, but wait for room where a chat request would be answered 429 or 503.
struct ServerAnalyzer: PostAnalyzer {
    let engine: any ChatEngine
    let log: CallLog?
    let shielded: Bool
    var gate: AdmissionGate? = nil
    /// The server's image ceiling (`--max-image-tokens` in pixels) for items of jobs that may come from elsewhere
    /// (`postlens jobs submit --options '{"max_pixels": …}'`): a job cannot raise it, as a request's `max_pixels` cannot.
    var maxPixels: Int? = nil

    func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        guard let gate else { return try await analyzeNow(request) }
        while true {
            if let ticket = gate.enter() {
                do {
                    let response = try await analyzeNow(request)
                    withExtendedLifetime(ticket) {}
                    return response
                } catch AdmissionError.kvCacheFull {
                    // Let the requests holding the budget finish; the ticket is released meanwhile.
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func analyzeNow(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        let engineRequest = InferenceEngine.Request(messages: request.messages, images: request.images,
                                                    parameters: request.parameters,
                                                    maxPixels: maxPixels.map { min(request.maxPixels ?? $0, $0) } ?? request.maxPixels)
        let engine = self.engine
        let call: @Sendable () async throws -> GenerationResult = {
            var result: GenerationResult?
            for try await event in engine.generate(engineRequest) {
                if case .finished(let r) = event { result = r }
            }
            guard let result else { throw CancellationError() }
            return result
        }
        let result = shielded ? try await Task { try await call() }.value : try await call()
        log?.append(result)
        return AnalyzerResponse(text: result.text, finishReason: result.finishReason, usage: result.usage)
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
func timingsJSON(_ results: [GenerationResult], totalSeconds: Double) -> JSONValue {
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
