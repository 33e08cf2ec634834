import Analysis
import Foundation
import JSON
import Hummingbird
import Synchronization

/// Batch analysis jobs: `POST /v1/batches?task=T` (a JSON-lines body of `{id, image, text, meta}` records) starts a
/// job that runs in the background, one item at a time, through the server's engine; `GET /v1/batches/{id}` reports
/// progress, `GET /v1/batches/{id}/results?format=jsonl|csv` returns the finished items (in input order, each id once,
/// per-item errors recorded), and `POST /v1/batches/{id}/cancel` stops the job before its next item.
///
/// Each job keeps its state in a ``JobStore`` (SQLite) in its own folder under the system temporary directory, with
/// the images of its records copied there at upload; the registry keeps at most ``BatchRegistry/maxStoredJobs`` jobs,
/// dropping the oldest finished one (and its folder) to make room. Jobs do not survive a restart.
struct BatchController<Context: RequestContext>: Sendable {
    let host: ModelHost
    let configuration: ServerConfiguration
    let images: ImageSource
    let registry: BatchRegistry
    /// The chat API's admission gate: batch items wait for a place in it.
    let gate: AdmissionGate

    init(host: ModelHost, configuration: ServerConfiguration, images: ImageSource, gate: AdmissionGate,
         registry: BatchRegistry = BatchRegistry()) {
        self.host = host
        self.configuration = configuration
        self.images = images
        self.gate = gate
        self.registry = registry
    }

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("/batches", use: create)
        routes.get("/batches/:id", use: show)
        routes.get("/batches/:id/results", use: results)
        routes.post("/batches/:id/cancel", use: cancel)
        return routes
    }

    // MARK: - Handlers

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        // The job pins the served model until it ends (no model switch meanwhile: its results come from one model).
        let (engine, lease) = try host.leaseForBatch()
        let query = request.uri.queryParameters
        var options: JSONObject = [:]
        for key in TaskSpec.optionKeys { if let value = query.get(key) { options[key] = .string(value) } }
        let spec = try TaskSpec.parse(task: query.get("task").map { .string($0) }, options: options, paramPrefix: "",
                                      fromQuery: true, configuration: configuration)
        let body = try await readBody(request, context: context, limit: configuration.maxBodyBytes, timeout: configuration.clientTimeout)
        let data = Data(buffer: body, byteTransferStrategy: .noCopy)
        guard let text = String(validating: data, as: UTF8.self) else { throw ServerError.bodyNotUTF8 }
        try Self.checkJSONLines(text)
        var items = RecordReader.readJSONL(text)
        guard items.count <= configuration.maxBatchRecords else {
            throw ServerError.limit("the body has \(items.count) records, more than the \(configuration.maxBatchRecords) one batch may have",
                                    param: "body")
        }
        guard !items.isEmpty else {
            throw APIError(status: .badRequest, message: "the body has no records; send one JSON object per line ({id, image, text, meta})",
                           param: "body", code: "invalid_jsonl")
        }

        let id = "batch_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let directory = registry.root.appendingPathComponent(id, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            // Images go through the same rules as chat and /v1/analyze; a refused one is that item's error.
            for index in items.indices {
                guard var record = items[index].record, let reference = record.image else { continue }
                do {
                    let bytes = try images.bytes(reference, param: "image")
                    let file = directory.appendingPathComponent("image-\(items[index].seq).img")
                    try bytes.write(to: file)
                    record.image = file.path
                    items[index].record = record
                } catch {
                    items[index].record = nil
                    items[index].error = "image: " + APIError(error, retryAfter: configuration.retryAfterSeconds).message
                }
            }
            let store = try JobStore(path: directory.appendingPathComponent("state.sqlite").path)
            // The records' images are the copies made above, checked by ImageSource: paths the server wrote itself.
            var options = spec.options
            options.trustInput = true
            let runner = TaskRunner(task: spec.task, analyzer: ServerAnalyzer(engine: { [host] in try host.readyEngine() }, log: nil, shielded: true, gate: gate),
                                    options: options, baseParameters: engine.defaultParameters)
            let job = BatchJob(id: id, task: spec.task, total: items.count, directory: directory,
                               pipeline: BatchPipeline(runner: runner, store: store))
            try registry.add(job)
            job.start(items, lease: lease)
            context.logger.info("batch started", metadata: ["batch": "\(id)", "task": "\(spec.task.versionTag)", "total": "\(items.count)"])
            return jsonResponse(job.json)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        jsonResponse(try job(context).json)
    }

    @Sendable func results(_ request: Request, context: Context) async throws -> Response {
        let job = try job(context)
        let format = request.uri.queryParameters.get("format")?.lowercased() ?? "jsonl"
        let lines = try job.pipeline.exportLines()
        switch format {
        case "jsonl", "ndjson":
            let text = lines.map { $0 + "\n" }.joined()
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        case "csv":
            let csv = ResultCSV.render(lines.compactMap { try? JSONValue.parse($0) }, task: job.task.kind)
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                   .contentDisposition: "attachment; filename=\"\(job.id).csv\""],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: csv)))
        default:
            throw ServerError.invalidRequest("'format' must be \"jsonl\" or \"csv\"", param: "format")
        }
    }

    @Sendable func cancel(_ request: Request, context: Context) async throws -> Response {
        let job = try job(context)
        job.cancel()
        context.logger.info("batch cancel", metadata: ["batch": "\(job.id)", "status": "\(job.status.rawValue)"])
        return jsonResponse(job.json)
    }

    private func job(_ context: Context) throws -> BatchJob {
        let id = try context.parameters.require("id")
        guard let job = registry.job(id) else {
            throw APIError(status: .notFound, message: "no batch job '\(id)' (jobs are kept in memory, at most \(BatchRegistry.maxStoredJobs))",
                           param: "id", code: "not_found")
        }
        return job
    }

    /// Lines that are not JSON objects make the whole upload a 400 naming the line (record-level problems, such as a
    /// record with neither image nor text, are that item's error instead).
    static func checkJSONLines(_ text: String) throws {
        var body = Substring(text)
        if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
        for (index, raw) in body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let problem: String
            do {
                guard case .object = try JSONValue.parse(line) else {
                    throw APIError(status: .badRequest, message: "malformed JSONL: line \(index + 1) is not a JSON object; send one {id, image, text, meta} object per line",
                                   param: "line \(index + 1)", code: "invalid_jsonl")
                }
                continue
            } catch let error as APIError {
                throw error
            } catch {
                problem = "\(error)"
            }
            throw APIError(status: .badRequest, message: "malformed JSONL: line \(index + 1) is not valid JSON (\(problem))",
                           param: "line \(index + 1)", code: "invalid_jsonl")
        }
    }
}

/// The jobs of this server process, newest last, bounded.
final class BatchRegistry: Sendable {
    static let maxStoredJobs = 32
    /// Folder holding one subfolder per job.
    let root: URL
    private let jobs = Mutex<[BatchJob]>([])

    /// `root` defaults to a folder of this process under the system temporary directory. Folders that earlier server
    /// processes left behind (their process is gone: a crash, a kill) are removed here, and this one when the registry
    /// goes away at shutdown, so batch images and job databases do not pile up in /tmp.
    init(root: URL? = nil) {
        let temporary = FileManager.default.temporaryDirectory
        self.root = root ?? temporary.appendingPathComponent("\(Self.prefix)\(getpid())-\(UUID().uuidString.prefix(8))")
        if root == nil {
            Self.removeAbandoned(in: temporary)
            Self.removeAtExit(self.root)
        }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// Folders removed when the process exits normally (the registry itself may still be referenced then).
    private static let exitList = Mutex<[URL]>([])

    private static func removeAtExit(_ folder: URL) {
        let first = exitList.withLock { list -> Bool in
            list.append(folder)
            return list.count == 1
        }
        if first {
            atexit {
                for folder in BatchRegistry.exitList.withLock({ $0 }) { try? FileManager.default.removeItem(at: folder) }
            }
        }
    }

    static let prefix = "postlens-batches-"

    /// Removes `postlens-batches-PID-…` folders whose process no longer runs.
    static func removeAbandoned(in directory: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-")
            guard let pid = parts.first.flatMap({ Int32($0) }), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
            }
        }
    }

    func job(_ id: String) -> BatchJob? { jobs.withLock { list in list.first { $0.id == id } } }

    /// Adds a job, dropping the oldest finished ones beyond the limit; 429 when every stored job is still running.
    func add(_ job: BatchJob) throws {
        let dropped: [BatchJob] = try jobs.withLock { list in
            var dropped: [BatchJob] = []
            while list.count >= Self.maxStoredJobs {
                guard let index = list.firstIndex(where: { $0.status != .running }) else {
                    throw APIError(status: .tooManyRequests,
                                   message: "\(Self.maxStoredJobs) batch jobs are running; wait for one to finish or cancel one",
                                   type: "rate_limit_error", code: "too_many_batches")
                }
                dropped.append(list.remove(at: index))
            }
            list.append(job)
            return dropped
        }
        for old in dropped { try? FileManager.default.removeItem(at: old.directory) }
    }
}

/// One batch job: its pipeline (task runner + job store) and the progress the pipeline reports.
final class BatchJob: BatchProgressReporter, Sendable {
    enum Status: String, Sendable { case running, completed, cancelled, failed }

    struct State: Sendable {
        var status = Status.running
        var done = 0
        var failed = 0
        var summary: JSONValue?
        var error: String?
        var finishedAt: Date?
    }

    let id: String
    let task: AnalysisTask
    let total: Int
    let createdAt = Date()
    let directory: URL
    let pipeline: BatchPipeline
    private let state = Mutex(State())
    private let worker = Mutex<Task<Void, Never>?>(nil)

    init(id: String, task: AnalysisTask, total: Int, directory: URL, pipeline: BatchPipeline) {
        self.id = id
        self.task = task
        self.total = total
        self.directory = directory
        self.pipeline = pipeline
    }

    var status: Status { state.withLock { $0.status } }

    /// Runs the items in the background; `lease` (the served model's pin) is held until the job ends.
    func start(_ items: [InputItem], lease: ModelHost.BatchLease) {
        worker.withLock { worker in
            worker = Task { [self] in
                defer { withExtendedLifetime(lease) {} }
                do {
                    let summary = try await pipeline.run(items, input: id, resume: false, progress: self)
                    finish(.completed, summary: summary.json, error: nil)
                } catch is CancellationError {
                    finish(.cancelled, summary: (try? pipeline.summarize())?.json, error: nil)
                } catch {
                    finish(.failed, summary: (try? pipeline.summarize())?.json, error: "\(error)")
                }
            }
        }
    }

    /// Marks the job cancelled at once; the item in flight finishes and is recorded, no further item starts.
    func cancel() {
        let wasRunning = state.withLock { s -> Bool in
            guard s.status == .running else { return false }
            s.status = .cancelled
            return true
        }
        if wasRunning { worker.withLock { $0?.cancel() } }
    }

    private func finish(_ status: Status, summary: JSONValue?, error: String?) {
        state.withLock { s in
            if s.status == .running { s.status = status }  // a cancel that came first stays a cancel
            s.summary = summary
            s.error = error
            s.finishedAt = Date()
            if let summary {
                s.done = Int(summary["total"]?.doubleValue ?? Double(s.done))
                s.failed = Int(summary["failed"]?.doubleValue ?? Double(s.failed))
            }
        }
    }

    var json: JSONValue {
        let s = state.withLock { $0 }
        var o: JSONObject = [
            "id": .string(id), "object": "batch", "task": .string(task.versionTag), "status": .string(s.status.rawValue),
            "total": JSONValue(Double(total)), "done": JSONValue(Double(s.done)), "failed": JSONValue(Double(s.failed)),
            "created_at": JSONValue(createdAt.timeIntervalSince1970.rounded(.down)),
        ]
        if let finishedAt = s.finishedAt { o["finished_at"] = JSONValue(finishedAt.timeIntervalSince1970.rounded(.down)) }
        if let summary = s.summary { o["summary"] = summary }
        if let error = s.error { o["error"] = .string(error) }
        return .object(o)
    }

    // MARK: BatchProgressReporter

    func began(total: Int, alreadyDone: Int) {}

    func progressed(done: Int, failed: Int, total: Int, itemsPerSecond: Double?, etaSeconds: Double?) {
        state.withLock { s in
            s.done = done
            s.failed = failed
        }
    }

    func finished() {}
}
