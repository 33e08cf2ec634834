import Analysis
import Foundation
import Hummingbird
import JSON
import Store

/// Batch analysis jobs: `POST /v1/batches?task=T` (a JSON-lines body of `{id, image, text, meta}` records, or OpenAI
/// batch requests) stores a job in the server's `JobQueue`; `GET /v1/batches` lists the newest jobs with their progress,
/// `GET /v1/batches/{id}` reports one, `GET /v1/batches/{id}/results?format=jsonl|csv|openai` returns the finished items
/// (in input order, each record once, per-item errors recorded), and `POST /v1/batches/{id}/cancel` stops the job
/// before its next item.
///
/// The queue is SQLite by default (in the history file, so jobs survive a restart) or PostgreSQL with `--database`
/// (then every server behind a load balancer sees every job, and `postlens worker`s run them too). Images of the
/// records are checked by the same rules as chat (from their headers; not decoded here) and stored with the job, so no
/// temporary file is written.
///
/// An upload is bounded like any request: the body limit and `--client-timeout`, at most `maxBatchRecords` records
/// (counted before any line is parsed), and a body's JSON limits (each line's depth, the values of all lines together,
/// each line parsed once: `JSONLines`); a server keeps at most `BatchService.maxOpenSubmissions` of the jobs it accepted
/// unfinished at once. Their items then wait for a place among the chat API's `--max-queue` (see `BatchService`).
struct BatchController<Context: RequestContext>: Sendable {
    let host: ModelHost
    let configuration: ServerConfiguration
    let images: ImageSource
    let batches: BatchService

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("/batches", use: create)
        routes.get("/batches", use: list)
        routes.get("/batches/:id", use: show)
        routes.get("/batches/:id/results", use: results)
        routes.post("/batches/:id/cancel", use: cancel)
        return routes
    }

    // MARK: - Handlers

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        // Jobs run on this server's engine unless it leaves them to workers.
        if batches.mode != .off { _ = try host.readyEngine() }
        let body = try await readBody(request, context: context, limit: configuration.maxBodyBytes, timeout: configuration.clientTimeout)
        let query = request.uri.queryParameters
        let limits = JSONLines.Limits(perLine: configuration.requestJSONLimits, totalValues: configuration.maxJSONValues)
        let recordLimits = BatchInput.Limits(maxRecords: configuration.maxBatchRecords, maxBytes: configuration.maxBodyBytes)
        let input = try await Offload.run { [task = query.get("task")] in
            let data = Data(buffer: body, byteTransferStrategy: .noCopy)
            guard let text = String(validating: data, as: UTF8.self) else { throw ServerError.bodyNotUTF8 }
            // Records are counted before any line is parsed; each line is then parsed once.
            let raw = JSONLines.split(text)
            if let refusal = recordLimits.refusal(records: raw.count, in: "the body") { throw ServerError.limit(refusal, param: "body") }
            let lines = JSONLines.parse(raw, limits: limits)
            try Self.checkJSONLines(lines)
            return BatchInput.parseJSONL(lines, task: task)
        }
        // Options come from the query string, or from the requests themselves in OpenAI's format.
        var options: JSONObject = input.options ?? [:]
        if input.options == nil {
            for key in TaskSpec.optionKeys { if let value = query.get(key) { options[key] = .string(value) } }
        }
        let taskName = query.get("task") ?? input.task
        let fromQuery = input.options == nil
        var spec = try await Offload.run { [options, configuration] in
            try TaskSpec.parse(task: taskName.map { .string($0) }, options: options, paramPrefix: "", fromQuery: fromQuery,
                               configuration: configuration).spec
        }
        spec.openAIFormat = input.openAIFormat
        guard !input.items.isEmpty else {
            throw APIError(status: .badRequest, message: "the body has no records; send one JSON object per line ({id, image, text, meta})",
                           param: "body", code: "invalid_jsonl")
        }
        try await batches.checkRoomForSubmission()
        var submission = JobSubmission(spec: spec, source: "api")
        submission.idPrefix = "batch_"
        let images = images, retryAfter = configuration.retryAfterSeconds, maxPixels = configuration.maxRequestPixels
        let info = try await mapped {
            try await submission.submit(input.items, to: batches.queue, resolve: { reference in
                // Same rules as chat and /v1/analyze, the header's pixels included (the image is not decoded here);
                // a refused image is that item's error.
                do {
                    var allowance = ImageAllowance(maxImages: 1, maxPixels: maxPixels)
                    return .bytes(try images.inspect(reference, param: "image", allowance: &allowance).bytes)
                } catch {
                    throw TaskError("image: " + APIError(error, retryAfter: retryAfter).message)
                }
            })
        }
        batches.accepted(info)
        batches.wake()
        context.logger.info("batch submitted", metadata: ["batch": "\(info.id)", "task": "\(info.task)", "total": "\(info.total)"])
        return jsonResponse(Self.json(info))
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let limit = min(200, max(1, request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 20))
        let jobs = try await mapped { try await batches.queue.jobs(limit: limit) }
        return jsonResponse(["object": "list", "data": .array(jobs.map(Self.json))])
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        jsonResponse(Self.json(try await summarized(try await job(context))))
    }

    @Sendable func results(_ request: Request, context: Context) async throws -> Response {
        let info = try await job(context)
        let format = request.uri.queryParameters.get("format")?.lowercased() ?? "jsonl"
        guard ["jsonl", "ndjson", "csv", "openai"].contains(format) else {
            throw ServerError.invalidRequest("'format' must be \"jsonl\", \"csv\" or \"openai\"", param: "format")
        }
        let results = try await mapped { try await batches.queue.allResults(jobID: info.id) }
        switch format {
        case "csv":
            let kind = (try? JobSpec(json: JSONValue.parse(info.spec)))?.task ?? .custom
            let csv = ResultCSV.render(results.compactMap { try? JSONValue.parse($0.line) }, task: kind)
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                   .contentDisposition: "attachment; filename=\"\(info.id).csv\""],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: csv)))
        default:
            let text = results.map { result in
                guard format == "openai", let line = try? JSONValue.parse(result.line) else { return result.line + "\n" }
                return OpenAIBatchOutput.line(line, jobID: info.id, seq: result.seq).sortedText + "\n"
            }.joined()
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
    }

    @Sendable func cancel(_ request: Request, context: Context) async throws -> Response {
        let id = try context.parameters.require("id")
        let info = try await mapped { try await batches.queue.cancelJob(id: id) }
        context.logger.info("batch cancel", metadata: ["batch": "\(info.id)", "status": "\(info.state.rawValue)"])
        return jsonResponse(Self.json(info))
    }

    // MARK: - Helpers

    private func job(_ context: Context) async throws -> JobInfo {
        let id = try context.parameters.require("id")
        return try await mapped { try await batches.queue.job(id: id) }
    }

    /// A finished job gets its summary (verdicts, polarities, failures) computed once and kept.
    private func summarized(_ info: JobInfo) async throws -> JobInfo {
        guard info.state.isFinal, info.summary == nil else { return info }
        var info = info
        let results = try await mapped { try await batches.queue.allResults(jobID: info.id) }
        info.summary = JobReport.summary(info, results: results).json.sortedText
        try? await batches.queue.setSummary(jobID: info.id, summary: info.summary ?? "{}")
        return info
    }

    /// The job in the API's shape: `JobReport.json` plus OpenAI's `object` and the `status` name older clients read.
    static func json(_ info: JobInfo) -> JSONValue {
        guard case .object(var o) = JobReport.json(info) else { return .null }
        o["object"] = "batch"
        o["status"] = .string(info.state.rawValue)
        return .object(o)
    }

    /// Store errors in the API's shape: an unknown job is a 404, a database that is away a 503.
    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            switch error {
            case .jobNotFound(let id):
                throw APIError(status: .notFound, message: "no batch job '\(id)'", type: "invalid_request_error", param: "id", code: "not_found")
            case .unavailable(let reason):
                throw APIError(status: .serviceUnavailable, message: reason, type: "server_error", code: "database_unavailable",
                               headers: [.retryAfter: String(configuration.retryAfterSeconds)])
            case .invalid(let reason), .conversationNotFound(let reason), .imageNotFound(let reason):
                throw APIError(status: .internalServerError, message: reason, type: "server_error", code: "store_error")
            }
        }
    }

    /// Lines that are not JSON objects, or over the JSON limits of a body, make the whole upload a 400 naming the line,
    /// and nothing is stored (record-level problems, such as a record with neither image nor text, are that item's
    /// error instead).
    static func checkJSONLines(_ lines: [JSONLines.Line]) throws {
        for line in lines {
            let param = "line \(line.number)"
            switch line.value {
            case .success(.object): continue
            case .success:
                throw APIError(status: .badRequest, message: "malformed JSONL: line \(line.number) is not a JSON object; send one {id, image, text, meta} object per line",
                               param: param, code: "invalid_jsonl")
            case .failure(let refusal) where refusal.totalExhausted:
                throw ServerError.limit("the body is refused at line \(line.number): \(refusal.reason) (a server limit; see docs/api.md)", param: "body")
            case .failure(let refusal) where refusal.isLimit:
                throw ServerError.limit("line \(line.number) of the body is refused: \(refusal.reason) (a server limit; see docs/api.md)", param: param)
            case .failure(let refusal):
                throw APIError(status: .badRequest, message: "malformed JSONL: line \(line.number) is not valid JSON (\(refusal.reason))",
                               param: param, code: "invalid_jsonl")
            }
        }
    }
}
