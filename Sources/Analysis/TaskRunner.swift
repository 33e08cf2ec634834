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

/// What the model said.
public struct AnalyzerResponse: Sendable {
    public var text: String
    public var finishReason: FinishReason
    public var usage: Usage
    public init(text: String, finishReason: FinishReason = .stop, usage: Usage = Usage()) {
        self.text = text
        self.finishReason = finishReason
        self.usage = usage
    }
}

/// The per-item model call, injectable: ``EngineAnalyzer`` runs the model; ``FakeAnalyzer`` answers
/// deterministically for tests of the batch machinery.
public protocol PostAnalyzer: Sendable {
    func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse
}

/// The model, through ``InferenceEngine``.
public struct EngineAnalyzer: PostAnalyzer {
    public let engine: InferenceEngine
    public init(engine: InferenceEngine) { self.engine = engine }

    public func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        let r = try await engine.complete(InferenceEngine.Request(messages: request.messages, images: request.images,
                                                                  parameters: request.parameters, maxPixels: request.maxPixels))
        return AnalyzerResponse(text: r.text, finishReason: r.finishReason, usage: r.usage)
    }
}

/// A deterministic stand-in for the model: answers each task with a fixed, schema-valid example
/// (OCR tiles answer their own position), after an optional delay. For tests only.
public struct FakeAnalyzer: PostAnalyzer {
    public var delay: Duration
    public init(delay: Duration = .zero) { self.delay = delay }

    public func analyze(_ request: AnalyzerRequest) async throws -> AnalyzerResponse {
        if delay > .zero { try await Task.sleep(for: delay) }
        if let tile = request.tile {
            return AnalyzerResponse(text: #"{"lines": ["\#(Self.tileWord(tile))"]}"#)
        }
        return AnalyzerResponse(text: TaskExamples.modelOutput(for: request.task).sortedText)
    }

    static let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]

    /// A line unique to a tile's position ("alpha foxtrot" for row 0, column 0).
    public static func tileWord(_ tile: DenseText.Tile) -> String {
        words[tile.row % words.count] + " " + words[(tile.column + 5) % words.count]
    }
}

/// How tasks run: language, token and pixel budgets, dense-text OCR.
public struct RunOptions: Sendable {
    public var language: PromptLanguage = .zh
    public var maxTokens = 1024
    /// Thinking models: reasoning tokens before the think block is closed and the JSON answer must begin; nil = half
    /// of `maxTokens`, so a model that keeps thinking still leaves room for its answer.
    public var maxReasoningTokens: Int? = nil
    /// Pixel budget per image for single-image calls (1 image token = 32×32 px); nil = the model's default.
    public var maxPixels: Int? = 1024 * 1024
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

    /// Generation parameters for this task. Extraction wants the most likely reading: greedy decoding,
    /// with the model's repetition penalty kept.
    public func generationParameters() -> GenerationParameters {
        var p = GenerationParameters()
        p.maxTokens = options.maxTokens
        p.sampling.temperature = 0
        p.sampling.repetitionPenalty = baseParameters.sampling.repetitionPenalty
        // A thinking model reasons first; the schema constrains the answer after its think block.
        p.thinking.maxReasoningTokens = options.maxReasoningTokens ?? options.maxTokens / 2
        // The answer is constrained to the task's schema (keys in look → extract → reason order), so a
        // `.stop` answer always parses; lenient parsing + SchemaValidator in
        // `AnalysisTask.result(fromModelOutput:context:)` stay as a double check (and catch `.length`).
        if let schema = try? JSONSchema.parse(task.schema.orderedSchemaValue) {
            p.responseFormat = .jsonSchema(name: task.versionTag, schema: schema, strict: true)
        }
        return p
    }

    public func run(_ record: PostRecord) async -> ItemOutcome { await run(record, imageData: nil) }

    /// `imageData`: the record's image bytes when they travel with a job (then `record.image` only names it).
    public func run(_ record: PostRecord, imageData: Data?) async -> ItemOutcome {
        let clock = ContinuousClock()
        let start = clock.now
        var usage = Usage()
        var raw: String?
        func seconds() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        do {
            if task.kind == .detect && record.image == nil { throw TaskError("the detect task needs an image") }
            var image: RGBImage? = nil
            if let reference = record.image {
                if let imageData {
                    image = try decodeImage(imageData, reference: reference)
                } else {
                    image = try await loadImage(reference)
                }
            }
            // Grounding boxes are mapped into the image as decoded (upright, full size), see `ImageFrame`.
            let context = PostContext(record: record, referenceYear: PostContext.referenceYear(for: record, fallback: options.referenceYear),
                                      image: image.map { ImageFrame(width: $0.width, height: $0.height) })
            let result: JSONValue
            if task.kind == .ocr, let image, shouldTile(image) {
                result = try await denseOCR(record, image: image, usage: &usage, raw: &raw)
            } else {
                let request = AnalyzerRequest(task: task, record: record,
                                              messages: task.messages(for: record, language: options.language, hasImage: image != nil),
                                              images: image.map { [$0] } ?? [], parameters: generationParameters(),
                                              maxPixels: image == nil ? nil : options.maxPixels, tile: nil)
                let response = try await analyzer.analyze(request)
                add(response.usage, to: &usage)
                raw = response.text
                result = try parse(response, context: context)
            }
            return ItemOutcome(id: record.id, result: result, error: nil, raw: nil, usage: usage, seconds: seconds())
        } catch {
            return ItemOutcome(id: record.id, result: nil, error: "\(error)", raw: raw, usage: usage, seconds: seconds(),
                               transient: error is any TransientError)
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

    func denseOCR(_ record: PostRecord, image: RGBImage, usage: inout Usage, raw: inout String?) async throws -> JSONValue {
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
            let response = try await analyzer.analyze(request)
            add(response.usage, to: &usage)
            raw = response.text
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

    func add(_ u: Usage, to total: inout Usage) {
        total.promptTokens += u.promptTokens
        total.completionTokens += u.completionTokens
        total.imageTokens += u.imageTokens
        total.cachedPromptTokens += u.cachedPromptTokens
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
