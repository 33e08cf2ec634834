import Foundation
import Kernels
import Qwen3VL
import Tensors

/// Continuous batching on one dedicated thread that owns all model work.
///
/// Each turn of the loop: admit waiting requests, run one prefill chunk of one request, then one
/// batched decode step for every sequence that is generating (one pass over the weights serves them
/// all). New requests join between steps. While others are generating, a prefill is cut into chunks
/// sized from the measured prefill speed to last about `prefillSliceSeconds`, so a long image prompt
/// does not freeze other streams. Cancelled requests leave before their next step.
final class Scheduler: @unchecked Sendable {
    struct Options: Sendable {
        var maxBatch = 8
        var prefillSliceSeconds = 1.0
        var visionCacheBytes = 256 << 20
        var prefixCacheBytes = 1 << 30
    }

    let model: Qwen3VLModel
    let processor: Qwen3VLProcessor
    let generator: Generator
    let options: Options
    let visionCache: VisionCache
    let prefixCache: PrefixCache
    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var active: [Job] = []
    /// Measured prefill speed (tokens/s) for slicing; starts pessimistic.
    private var prefillRate = 32.0

    init(generator: Generator, options: Options) {
        model = generator.model
        processor = generator.processor
        self.generator = generator
        self.options = options
        visionCache = VisionCache(budgetBytes: options.visionCacheBytes)
        prefixCache = PrefixCache(budgetBytes: options.prefixCacheBytes, imageTokenID: generator.model.configuration.imageTokenID)
        // The thread keeps the scheduler alive until `stop()`; the engine stops it when it goes away.
        let thread = Thread { [self] in self.loop() }
        thread.name = "postlens.scheduler"
        thread.stackSize = 8 << 20
        thread.start()
    }

    private var stopping = false

    func submit(_ job: Job) {
        condition.lock()
        if stopping {
            condition.unlock()
            job.fail(CancellationError())
            return
        }
        waiting.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the loop after the current turn; waiting and active requests are cancelled.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Cache counters, read from other threads.
    func statistics() -> (vision: CacheStatistics, prefix: CacheStatistics, active: Int, waiting: Int) {
        condition.lock(); defer { condition.unlock() }
        return (visionCache.statistics, prefixCache.statistics, active.count, waiting.count)
    }

    private func loop() {
        while true {
            condition.lock()
            while waiting.isEmpty && active.isEmpty && !stopping { condition.wait() }
            if stopping {
                let leftovers = waiting + active
                waiting = []
                condition.unlock()
                for job in leftovers { job.cancelled.set() }
                active = leftovers
                retire()
                return
            }
            while active.count < options.maxBatch, !waiting.isEmpty { active.append(waiting.removeFirst()) }
            condition.unlock()
            turn()
        }
    }

    /// One turn: drop cancelled work, one prefill slice, one batched decode step, retire finished jobs.
    private func turn() {
        for job in active where job.cancelled.isSet { job.state?.cancel() }
        let decoding = active.filter { $0.nextToken != nil && !$0.isDone }
        if let job = active.first(where: { $0.state == nil && !$0.isDone && !$0.cancelled.isSet }) {
            prefillSlice(job, othersWaiting: !decoding.isEmpty)
        }
        let batch = decoding.filter { !$0.isDone }
        if !batch.isEmpty {
            let logits = model.text.decodeBatch(tokens: batch.map { $0.nextToken! }, caches: batch.map { $0.cache! })
            let vocab = model.configuration.text.vocabSize
            for (i, job) in batch.enumerated() {
                job.nextToken = job.state!.step(logits.data + i * vocab)
            }
        }
        retire()
    }

    /// Prepares a job on first visit (processor, prefix cache, vision), then prefills one slice.
    private func prefillSlice(_ job: Job, othersWaiting: Bool) {
        do {
            if job.prompt == nil { try start(job) }
            if !job.pendingImages.isEmpty || job.currentEncoding != nil {
                advanceVision(job, othersWaiting: othersWaiting)
                return
            }
            guard let prompt = job.prompt, let cache = job.cache, let positions = job.positions else { return }
            let total = prompt.tokens.count
            var end = total
            if othersWaiting {
                end = min(total, cache.count + max(16, Int(prefillRate * options.prefillSliceSeconds)))
            }
            let start = cache.count
            let clock = DispatchTime.now()
            let imagesBefore = prompt.tokens[..<start].filter { $0 == model.configuration.imageTokenID }.count
            let logits: Tensor
            if let stored = job.storedLogits, start == total {
                logits = Tensor(shape: [1, stored.count], values: stored)
                end = total
            } else {
                logits = model.text.forward(tokens: Array(prompt.tokens[start..<end]), positions: positions.slice(start..<end),
                                            cache: cache, vision: job.vision, visionRowStart: imagesBefore - job.visionRowOffset,
                                            logits: end == total ? .last : .none)
            }
            let seconds = milliseconds(since: clock) / 1000
            if end - start >= 8, seconds > 0 { prefillRate = 0.5 * prefillRate + 0.5 * Double(end - start) / seconds }
            job.timings.prefillMs += seconds * 1000
            if end == total {
                job.promptLogits = Array(UnsafeBufferPointer(start: logits.data, count: logits.count))
                let state = DecodingState(parameters: job.request.parameters, tokenizer: processor.tokenizer,
                                          vocab: model.configuration.text.vocabSize, eos: model.eosTokenIDs, prompt: prompt.tokens,
                                          maxNew: job.maxNew, timings: job.timings, usage: job.usage, started: job.arrival,
                                          grammar: job.grammar, reasoning: job.prepared.reasoning, emit: job.emit)
                job.state = state
                job.nextToken = state.step(logits.data)
            }
        } catch {
            job.fail(error)
        }
    }

    /// Model-side set-up of a prepared job (its template, tokens, patches and grammar were made beforehand by
    /// `Generator.prepare`, off this thread): positions, the prefix cache, the KV cache.
    private func start(_ job: Job) throws {
        let prompt = job.prepared.prompt
        job.timings.preprocessMs = job.prepared.preprocessMs
        job.maxNew = job.prepared.maxNew
        job.grammar = job.prepared.grammar
        let positions = try model.positions(for: prompt.tokens, grids: prompt.grids)
        let clock = DispatchTime.now()
        let imageKeys = prompt.images.map(VisionCache.key)
        job.imageKeys = imageKeys

        // Reuse the longest cached prefix; at least the last prompt token is recomputed for its logits.
        var cache: KVCache
        if let hit = prefixCache.take(tokens: prompt.tokens, imageKeys: imageKeys) {
            cache = hit.cache
            if hit.matched >= prompt.tokens.count, let stored = hit.promptLogits, stored.length == prompt.tokens.count {
                // The very same prompt again: its logits are stored, nothing is recomputed.
                cache.truncate(to: prompt.tokens.count)
                job.storedLogits = stored.logits
            } else {
                cache.truncate(to: min(hit.matched, prompt.tokens.count - 1))
            }
        } else {
            // Exactly the rows the request reserved in the KV budget, so it never grows past them.
            cache = model.text.makeCache(initialCapacity: prompt.tokens.count + job.maxNew)
        }
        cache.ropeDelta = positions.ropeDelta
        job.usage = Usage(promptTokens: prompt.tokens.count, imageTokens: prompt.imageTokenCount)
        job.usage.cachedPromptTokens = cache.count

        // Vision features only for images whose tokens are not all in the reused prefix; they are encoded
        // a block at a time by `advanceVision` (or come from the vision cache).
        let runs = imageRuns(prompt.tokens)
        let firstNeeded = runs.firstIndex { $0.upperBound > cache.count } ?? runs.count
        job.pendingImages = Array(firstNeeded..<runs.count)
        job.visionRowOffset = runs[..<firstNeeded].reduce(0) { $0 + $1.count }
        job.timings.visionMs = milliseconds(since: clock)
        job.prompt = prompt
        job.positions = positions
        job.cache = cache
    }

    /// Encodes the job's pending images, block by block. While others are generating it stops after about
    /// `prefillSliceSeconds` so their next decode step is not held up by a long image encoding.
    private func advanceVision(_ job: Job, othersWaiting: Bool) {
        guard let prompt = job.prompt else { return }
        let clock = DispatchTime.now()
        defer { job.timings.visionMs += milliseconds(since: clock) }
        let budget = othersWaiting ? options.prefillSliceSeconds * 1000 : .infinity
        while let index = job.pendingImages.first {
            if job.currentEncoding == nil {
                if let cached = visionCache.lookup(job.imageKeys[index]) {
                    job.visionParts.append(cached)
                    job.pendingImages.removeFirst()
                    continue
                }
                let image = prompt.images[index]
                let pixels = Tensor(shape: [image.patchCount, image.pixelValues.count / max(1, image.patchCount)], values: image.pixelValues)
                job.currentEncoding = withExtendedLifetime(pixels) {
                    VisionEncoding(encoder: model.vision, pixelValues: pixels.data,
                                   grids: [ImageGrid(t: image.gridT, h: image.gridH, w: image.gridW)])
                }
            }
            guard let encoding = job.currentEncoding else { return }
            while !encoding.isFinished {
                encoding.runNextBlock()
                if milliseconds(since: clock) > budget, !encoding.isFinished { return }
            }
            let features = encoding.features()
            visionCache.insert(job.imageKeys[index], features)
            job.visionParts.append(features)
            job.currentEncoding = nil
            job.pendingImages.removeFirst()
            if milliseconds(since: clock) > budget, !job.pendingImages.isEmpty { return }
        }
        job.vision = VisionFeatures.concatenate(job.visionParts)
        job.visionParts = []
    }

    /// Token ranges of each image's pad run, in order.
    private func imageRuns(_ tokens: [Int]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var i = 0
        let pad = model.configuration.imageTokenID
        while i < tokens.count {
            if tokens[i] == pad {
                let start = i
                while i < tokens.count, tokens[i] == pad { i += 1 }
                runs.append(start..<i)
            } else {
                i += 1
            }
        }
        return runs
    }

    /// Completes finished, failed and cancelled jobs; their KV goes back to the prefix cache.
    private func retire() {
        var kept: [Job] = []
        for job in active {
            if job.cancelled.isSet, let state = job.state, !state.isFinished { state.cancel() }
            let finished = job.failed || (job.state?.isFinished ?? false) || (job.state == nil && job.cancelled.isSet)
            if !finished { kept.append(job); continue }
            if let state = job.state {
                state.complete()
                job.continuation.finish()
            } else if !job.failed {
                job.continuation.finish(throwing: CancellationError())
            }
            if let cache = job.cache, job.state != nil {
                prefixCache.insert(cache, imageKeys: job.imageKeys,
                                   promptLogits: job.promptLogits.map { (job.prompt?.tokens.count ?? 0, $0) })
            }
        }
        condition.lock()
        active = kept
        condition.unlock()
    }
}

/// One request inside the scheduler.
final class Job: @unchecked Sendable {
    let request: InferenceEngine.Request
    /// Template, tokens, patches, grammar and KV reservation, made before the job reached the scheduler.
    let prepared: PreparedRequest
    let cancelled: CancellationFlag
    let continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation
    let arrival: DispatchTime
    var prompt: PreparedPrompt?
    var positions: MRoPEPositions?
    var cache: KVCache?
    var vision: VisionFeatures?
    /// Image-token rows before the first image in `vision` (their KV came from the prefix cache).
    var visionRowOffset = 0
    var imageKeys: [String] = []
    /// Images still to encode (indices into the prompt's images), the one in progress, and those done.
    var pendingImages: [Int] = []
    var currentEncoding: VisionEncoding?
    var visionParts: [VisionFeatures] = []
    /// Logits after the prompt (kept for the prefix cache) and, on an exact repeat, the stored ones to start from.
    var promptLogits: [Float]?
    var storedLogits: [Float]?
    var maxNew = 0
    var timings = Timings()
    var usage = Usage()
    var state: DecodingState?
    var grammar: GrammarMatcher?
    var nextToken: Int?
    var failed = false

    init(request: InferenceEngine.Request, prepared: PreparedRequest, cancelled: CancellationFlag,
         continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation, arrival: DispatchTime) {
        self.request = request
        self.prepared = prepared
        self.cancelled = cancelled
        self.continuation = continuation
        self.arrival = arrival
    }

    var isDone: Bool { failed || (state?.isFinished ?? false) }

    var emit: (GenerationEvent) -> Void {
        let continuation = continuation
        return { continuation.yield($0) }
    }

    func fail(_ error: Error) {
        failed = true
        continuation.finish(throwing: error)
    }
}
