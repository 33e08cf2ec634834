import Engine
import Foundation
import JSON
import Imaging
import Qwen3VL
import RemoteImages

/// One model call for one post (or one tile of it).
public struct AnalyzerRequest: Sendable {
    public var task: AnalysisTask
    public var record: PostRecord
    public var messages: [ChatMessage]
    public var images: [RGBImage]
    public var parameters: GenerationParameters
    public var maxPixels: Int?
    /// Dense-text OCR: which tile this is.
    public var tile: DenseText.Tile?
}

/// What the model said, with what it cost.
public struct AnalyzerResponse: Sendable, Equatable {
    public var text: String
    public var finishReason: FinishReason
    public var usage: Usage
    public var timings: Timings
    public init(text: String, finishReason: FinishReason = .stop, usage: Usage = Usage(), timings: Timings = Timings()) {
        self.text = text
        self.finishReason = finishReason
        self.usage = usage
        self.timings = timings
    }
}

/// The per-item model call. The product has one: ``EngineAnalyzer``; tests plug in a stand-in engine behind it, or
/// answer here directly.
public protocol PostAnalyzer: Sendable {
    func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse
}

/// A limit on model calls in flight that a call waits for (the server's admission gate, `--max-queue`).
public protocol AdmissionControl: Sendable {
    /// A ticket held while the call runs (released when dropped), or nil when every place is taken.
    func admit() -> (any Sendable)?
}

/// The one analyzer: a task's model call over a ``ChatEngine``. `postlens analyze`, `postlens worker`, `/v1/analyze` and
/// the server's batch worker all run their items through it; they differ only in the options below.
public struct EngineAnalyzer: PostAnalyzer {
    public let engine: any ChatEngine
    /// A ceiling on each call's pixel budget, whatever the job asked for (`--max-image-tokens` of the server or worker:
    /// a job submitted elsewhere cannot raise it, as a request's `max_pixels` cannot).
    public var maxPixels: Int?
    /// With an admission control (the server's batch worker), each call first waits for a place among the requests in
    /// flight, and a call the engine turns away because the KV-cache budget is in use waits and tries again: batch
    /// items share the chat API's limits, but wait for room where a chat request would be answered 429 or 503.
    public var admission: (any AdmissionControl)?
    /// The call runs in a task of its own, so that cancelling the caller (a batch being cancelled) lets the call in
    /// flight finish, and the item stops before its next call.
    public var shielded: Bool

    public init(engine: any ChatEngine, maxPixels: Int? = nil, admission: (any AdmissionControl)? = nil, shielded: Bool = false) {
        self.engine = engine
        self.maxPixels = maxPixels
        self.admission = admission
        self.shielded = shielded
    }

    public func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        guard let admission else { return try await call(request) }
        while true {
            if let ticket = admission.admit() {
                do {
                    let response = try await call(request)
                    withExtendedLifetime(ticket) {}
                    return response
                } catch AdmissionError.kvCacheFull {
                    // Let the requests holding the budget finish; the ticket is released meanwhile.
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    private func call(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        let engineRequest = InferenceEngine.Request(messages: request.messages, images: request.images, parameters: request.parameters,
                                                    maxPixels: maxPixels.map { min(request.maxPixels ?? $0, $0) } ?? request.maxPixels)
        let engine = self.engine
        let result = shielded ? try await Task { try await engine.complete(engineRequest) }.value
                              : try await engine.complete(engineRequest)
        return AnalyzerResponse(text: result.text, finishReason: result.finishReason, usage: result.usage, timings: result.timings)
    }
}

/// How tasks run: language, token and pixel budgets, dense-text OCR.
public struct RunOptions: Sendable {
    public var language: PromptLanguage = .zh
    public var maxTokens = 1024
    /// Thinking models: reasoning tokens before the think block is closed and the JSON answer must begin; nil = half
    /// of `maxTokens`, so a model that keeps thinking still leaves room for its answer.
    public var maxReasoningTokens: Int? = nil
    /// Pixel budget per image for single-image calls (`ImageTokenBudget`: the command line's `--max-image-tokens`);
    /// nil = the model's default.
    public var maxPixels: Int? = ImageTokenBudget.pixels(ImageTokenBudget.defaultMaximum)
    public enum DenseMode: String, Sendable, CaseIterable { case auto, on, off }
    /// `auto`: the ocr task tiles images larger than one tile; `on`: always tile; `off`: never.
    public var dense: DenseMode = .auto
    public var tiling = DenseText.Configuration()
    /// Folder that relative image paths are resolved against.
    public var baseDirectory: URL? = nil
    /// Year for dates without one when the post's meta has no date.
    public var referenceYear = Calendar(identifier: .gregorian).component(.year, from: Date())
    /// Largest image file read, in bytes.
    public var maxImageBytes = 64 << 20
    /// Input from a trusted source (`--trust-input`): image paths may lie outside `baseDirectory`, and image URLs may
    /// name private and loopback hosts. Otherwise a record's image must be a file inside `baseDirectory` (after `..`
    /// and symlinks are resolved) or an `http(s)` URL of a public host, fetched with the server's SSRF guard.
    public var trustInput = false
    public init() {}
}

/// The outcome of one item.
public struct ItemOutcome: Sendable, Equatable {
    public var id: String
    public var result: JSONValue?
    public var error: String?
    /// The model's text when it could not be used (to see why).
    public var raw: String?
    public var usage: Usage
    public var seconds: Double
    /// The error may go away on its own (an image server that timed out): a queue worker tries the item again.
    public var transient = false
    /// Every model call the item made, in order (several for dense OCR): `/v1/analyze` reports their text and timings.
    public var calls: [AnalyzerResponse] = []
    public var ok: Bool { error == nil }
}

/// An error that may not happen again if the item is tried later (network trouble, a server's 5xx or 429).
public protocol TransientError: Error {}

/// An image download that failed in a way worth retrying.
public struct DownloadError: TransientError, CustomStringConvertible {
    public let description: String
}

/// Runs one task on one record: loads the image, builds the prompt and the generation parameters
/// (the one place they are built), calls the analyzer (per tile for dense OCR), parses, validates and
/// post-processes. Never throws: every problem is the item's error.
public struct TaskRunner: Sendable {
    public let task: AnalysisTask
    public let analyzer: any PostAnalyzer
    public let options: RunOptions
    /// The model's recommended sampling, when known (greedy otherwise).
    public let baseParameters: GenerationParameters

    public init(task: AnalysisTask, analyzer: any PostAnalyzer, options: RunOptions = RunOptions(),
                baseParameters: GenerationParameters = GenerationParameters()) {
        self.task = task
        self.analyzer = analyzer
        self.options = options
        self.baseParameters = baseParameters
    }

    /// Tokens kept for the `\n</think>\n\n` the engine writes when a thinking model's reasoning budget runs out.
    static let thinkBlockClosing = 16

    /// Generation parameters for this task. Extraction wants the most likely reading: greedy decoding,
    /// with the model's repetition penalty kept.
    public func generationParameters() -> GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = options.maxTokens
        p.sampling.temperature = 0
        p.sampling.repetitionPenalty = baseParameters.sampling.repetitionPenalty
        // A thinking model reasons first; the schema constrains the answer after its think block. The reasoning gets
        // what `max_tokens` leaves beyond the answer's worst case (an explicit budget is held to that too, and the
        // closing `</think>` is allowed for), so the answer still closes; without a worst case, half of `max_tokens`.
        if let worst = task.worstCaseTokens {
            let room = max(0, options.maxTokens - worst - Self.thinkBlockClosing)
            p.thinking.maxReasoningTokens = min(options.maxReasoningTokens ?? room, room)
        } else {
            p.thinking.maxReasoningTokens = options.maxReasoningTokens ?? options.maxTokens / 2
        }
        // The answer is constrained to the task's schema (keys in look → extract → reason order), so a
        // `.stop` answer always parses; lenient parsing + SchemaValidator in
        // `AnalysisTask.result(fromModelOutput:context:)` stay as a double check (and catch `.length`).
        if let schema = try? JSONSchema.parse(task.schema.orderedSchemaValue) {
            p.responseFormat = .jsonSchema(name: task.versionTag, schema: schema, strict: true)
        }
        return p
    }

    /// Where a record's image comes from.
    enum ImageInput {
        /// `record.image` names a file or URL, read under the guard of `RunOptions.trustInput`.
        case reference
        /// The bytes travel with a job; `record.image` only names them.
        case bytes(Data)
        /// Already decoded (and checked) by the caller, as `/v1/analyze` does; `record.image` only names it.
        case decoded(RGBImage)
    }

    public func run(_ record: PostRecord) async -> ItemOutcome { await run(record, input: .reference) }

    /// `imageData`: the record's image bytes when they travel with a job (then `record.image` only names it).
    public func run(_ record: PostRecord, imageData: Data?) async -> ItemOutcome {
        await run(record, input: imageData.map { .bytes($0) } ?? .reference)
    }

    /// The record's image decoded by the caller (nil: the record has none).
    public func run(_ record: PostRecord, image: RGBImage?) async -> ItemOutcome {
        var record = record
        if image == nil { record.image = nil }
        return await run(record, input: image.map { .decoded($0) } ?? .reference)
    }

    func run(_ record: PostRecord, input: ImageInput) async -> ItemOutcome {
        let clock = ContinuousClock()
        let start = clock.now
        let calls = CallRecorder(analyzer)
        func seconds() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        do {
            if task.kind == .detect && record.image == nil { throw TaskError("the detect task needs an image") }
            var image: RGBImage? = nil
            if let reference = record.image {
                switch input {
                case .reference: image = try await loadImage(reference)
                case .bytes(let data): image = try decodeImage(data, reference: reference)
                case .decoded(let decoded): image = decoded
                }
            }
            // Grounding boxes are mapped into the image as decoded (upright, full size), see `ImageFrame`.
            let context = PostContext(record: record, referenceYear: PostContext.referenceYear(for: record, fallback: options.referenceYear),
                                      image: image.map { ImageFrame(width: $0.width, height: $0.height) })
            let result: JSONValue
            if task.kind == .ocr, let image, shouldTile(image) {
                result = try await denseOCR(record, image: image, calls: calls)
            } else {
                let request = AnalyzerRequest(task: task, record: record,
                                              messages: task.messages(for: record, language: options.language, hasImage: image != nil),
                                              images: image.map { [$0] } ?? [], parameters: generationParameters(),
                                              maxPixels: image == nil ? nil : options.maxPixels, tile: nil)
                result = try parse(try await calls.analyze(request), context: context)
            }
            return ItemOutcome(id: record.id, result: result, error: nil, raw: nil, usage: calls.usage, seconds: seconds(),
                               calls: calls.responses)
        } catch {
            return ItemOutcome(id: record.id, result: nil, error: "\(error)", raw: calls.responses.last?.text, usage: calls.usage,
                               seconds: seconds(), transient: error is any TransientError, calls: calls.responses)
        }
    }

    func parse(_ response: AnalyzerResponse, context: PostContext) throws -> JSONValue {
        do {
            return try task.result(fromModelOutput: response.text, context: context)
        } catch let error as TaskError where response.finishReason == .length {
            throw TaskError("\(error.description) (the answer was cut at --max-tokens \(options.maxTokens))")
        }
    }

    func shouldTile(_ image: RGBImage) -> Bool {
        switch options.dense {
        case .on: true
        case .off: false
        case .auto: DenseText.needsTiling(width: image.width, height: image.height, configuration: options.tiling)
        }
    }

    func denseOCR(_ record: PostRecord, image: RGBImage, calls: CallRecorder) async throws -> JSONValue {
        let plan = DenseText.plan(width: image.width, height: image.height, configuration: options.tiling)
        var perTile: [[String]] = []
        let context = PostContext(record: record, referenceYear: options.referenceYear)
        for (index, tile) in plan.tiles.enumerated() {
            try Task.checkCancellation()
            let crop = DenseText.crop(image, tile)
            // The tile's own area, scaled by the plan: native resolution unless the tile budget forced a downscale.
            let budget = max(32 * 32, Int(Double(crop.width * crop.height) * plan.scale * plan.scale))
            let request = AnalyzerRequest(task: task, record: record,
                                          messages: task.messages(for: record, language: options.language, hasImage: true,
                                                                  tile: (index, plan.tiles.count)),
                                          images: [crop], parameters: generationParameters(), maxPixels: budget, tile: tile)
            let response = try await calls.analyze(request)
            do {
                let lines = try parse(response, context: context)["lines"]?.arrayValue?.compactMap(\.stringValue) ?? []
                perTile.append(lines)
            } catch {
                throw TaskError("tile \(index + 1)/\(plan.tiles.count): \(error)")
            }
        }
        let merged = DenseText.merge(perTile, window: plan.columns > 1 ? 12 : 0)
        return PostProcessing.ocrResult(lines: merged, tiles: plan.tiles.count)
    }

    /// Reads and decodes the record's image: a path (relative to the input's folder), `file://` or `http(s)://`,
    /// within the guard of `RunOptions.trustInput`.
    func loadImage(_ reference: String) async throws -> RGBImage {
        try await loadImageWithBytes(reference).image
    }

    /// The decoded image and the bytes it came from (`AnnotationWriter` keeps a JPEG a JPEG).
    func loadImageWithBytes(_ reference: String) async throws -> (image: RGBImage, bytes: Data) {
        let data: Data
        if reference.hasPrefix("http://") || reference.hasPrefix("https://") {
            let fetcher = RemoteImageFetcher(maxBytes: options.maxImageBytes, allowPrivateAddresses: options.trustInput)
            do { data = try await fetcher.fetch(reference) } catch { throw Self.downloadError(error, reference: reference) }
        } else {
            data = try LocalImageFile.read(reference, base: options.baseDirectory, maxBytes: options.maxImageBytes,
                                           confined: !options.trustInput)
        }
        return (try decodeImage(data, reference: reference), data)
    }

    func decodeImage(_ data: Data, reference: String) throws -> RGBImage {
        do {
            return try ImageDecoder.decode(data)
        } catch {
            throw TaskError("cannot decode image \(reference): \(error)")
        }
    }

    /// A failed fetch as the item's error: worth retrying (a queue worker tries the item again) when the network or
    /// the image server may recover (no answer, a 5xx, a 429, a name that did not resolve), final otherwise (a refused
    /// address, a 404, an oversized image).
    static func downloadError(_ error: RemoteImageError, reference: String) -> any Error {
        let message = "cannot download image \(reference.prefix(200)): \(error)"
        switch error {
        case .failed, .unresolvable: return DownloadError(description: message)
        case .httpStatus(let code) where code >= 500 || code == 429: return DownloadError(description: message)
        default: return TaskError(message)
        }
    }
}

/// The model calls of one item, in order, with their usage summed.
final class CallRecorder: @unchecked Sendable {
    // One item's calls run one after another, on the item's task.
    private let analyzer: any PostAnalyzer
    private(set) var responses: [AnalyzerResponse] = []

    init(_ analyzer: any PostAnalyzer) { self.analyzer = analyzer }

    func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        let response = try await analyzer.analyze(request)
        responses.append(response)
        return response
    }

    var usage: Usage {
        responses.reduce(into: Usage()) { total, r in
            total.promptTokens += r.usage.promptTokens
            total.completionTokens += r.usage.completionTokens
            total.imageTokens += r.usage.imageTokens
            total.cachedPromptTokens += r.usage.cachedPromptTokens
        }
    }
}
