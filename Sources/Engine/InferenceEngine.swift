import Dispatch
import Foundation
import Imaging
import Kernels
import Qwen3VL
import Synchronization

/// The one owner of the model. A request is first prepared on a queue of its own (template, tokens, image
/// patches, length check, JSON grammar, KV reservation: `Generator.prepare`), so that no request's text or schema
/// can hold up the model thread; it then goes to the `Scheduler`, whose single thread runs all model work
/// (continuous batching: concurrent requests share decode steps) and never blocks Swift's cooperative thread pool.
/// Results stream back through an `AsyncThrowingStream`; when the consumer goes away the request is cancelled
/// before its next step (or its preparation stops).
public final class InferenceEngine: Sendable {
    public let model: Qwen3VLModel
    public let processor: Qwen3VLProcessor
    public let generator: Generator
    let scheduler: Scheduler
    /// Limits on compiling a request's JSON schema.
    public let schemaLimits: SchemaLimits
    /// The KV-cache budget requests are admitted against; nil = unbounded.
    public let kvBudget: KVBudget?
    /// What the KV caches hold (F32, or BF16 for quantized formats on CPUs with AVX512_BF16) and its bytes per token.
    public let kvElement: KVElement
    public let kvBytesPerToken: Int
    /// Serial: preparations run one at a time, beside (never on) the model thread.
    private let preparation = DispatchQueue(label: "postlens.prepare", qos: .userInitiated)

    /// - `maxBatch`: most sequences decoding together; `prefillSliceSeconds`: how long one request's prefill
    ///   or vision encoding may hold up the others' decode steps; `kvCacheBudgetBytes`: KV-cache memory all
    ///   requests in flight may reserve together (nil: no bound).
    public init(model: Qwen3VLModel, processor: Qwen3VLProcessor, contextLimit: Int? = nil, maxBatch: Int = 8,
                prefillSliceSeconds: Double = 1.0, kvCacheBudgetBytes: Int? = nil, schemaLimits: SchemaLimits = .default) {
        self.model = model
        self.processor = processor
        generator = Generator(model: model, processor: processor, contextLimit: contextLimit)
        var options = Scheduler.Options()
        options.maxBatch = max(1, maxBatch)
        options.prefillSliceSeconds = max(0, prefillSliceSeconds)
        scheduler = Scheduler(generator: generator, options: options)
        self.schemaLimits = schemaLimits
        // Bytes per cached token as the cache itself stores them (whatever its element format).
        let probe = model.text.makeCache(initialCapacity: 1)
        kvElement = probe.element
        kvBytesPerToken = probe.bytesPerToken
        kvBudget = kvCacheBudgetBytes.map { KVBudget(capacityBytes: $0, bytesPerToken: probe.bytesPerToken) }
    }

    deinit { scheduler.stop() }

    /// Loads a model folder (config, weights, tokenizer, preprocessor).
    /// The format has no default here: the command line's is q8 (`RuntimeOptions`), the golden tests' f32.
    public convenience init(directory: URL, contextLimit: Int? = nil, format: WeightFormat,
                            kvCacheBudgetBytes: Int? = nil) throws {
        let model = try Qwen3VLModel(directory: directory, format: format)
        let processor = try Qwen3VLProcessor(directory: directory, configuration: model.configuration)
        self.init(model: model, processor: processor, contextLimit: contextLimit, kvCacheBudgetBytes: kvCacheBudgetBytes)
    }

    /// A conversation to answer: messages with image parts, and the images in the same order.
    public struct Request: Sendable {
        public var messages: [ChatMessage]
        public var images: [RGBImage]
        public var parameters: GenerationParameters
        public var minPixels: Int?
        public var maxPixels: Int?

        public init(messages: [ChatMessage], images: [RGBImage] = [], parameters: GenerationParameters = GenerationParameters(),
                    minPixels: Int? = nil, maxPixels: Int? = nil) {
            self.messages = messages
            self.images = images
            self.parameters = parameters
            self.minPixels = minPixels
            self.maxPixels = maxPixels
        }
    }

    /// Streams the answer: `.delta` events as tokens arrive, then one `.finished`.
    public func generate(_ request: Request) -> AsyncThrowingStream<GenerationEvent, Error> {
        let cancelled = CancellationFlag()
        let arrival = DispatchTime.now()
        return AsyncThrowingStream { continuation in
            continuation.onTermination = { _ in cancelled.set() }
            preparation.async { [self] in
                do {
                    if cancelled.isSet { throw CancellationError() }
                    let prepared = try generator.prepare(request, limits: schemaLimits, kvBudget: kvBudget,
                                                         isCancelled: { cancelled.isSet })
                    scheduler.submit(Job(request: request, prepared: prepared, cancelled: cancelled,
                                         continuation: continuation, arrival: arrival))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }


    /// Counters of the engine's caches and queue, for metrics.
    public struct Statistics: Sendable {
        public let visionCache: CacheStatistics
        public let prefixCache: CacheStatistics
        public let active: Int
        public let waiting: Int
        public let kvCache: KVCacheStatistics
    }

    /// The KV caches of requests in flight: their element, bytes per token, and the budget they are admitted against.
    public struct KVCacheStatistics: Sendable {
        public let element: KVElement
        public let bytesPerToken: Int
        public let budgetBytes: Int?
        public let reservedBytes: Int
    }

    public func statistics() -> Statistics {
        let s = scheduler.statistics()
        return Statistics(visionCache: s.vision, prefixCache: s.prefix, active: s.active, waiting: s.waiting,
                          kvCache: KVCacheStatistics(element: kvElement, bytesPerToken: kvBytesPerToken,
                                                     budgetBytes: kvBudget?.capacityBytes, reservedBytes: kvBudget?.usedBytes ?? 0))
    }
}

/// A flag set from any thread and polled by the generation loop.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}
