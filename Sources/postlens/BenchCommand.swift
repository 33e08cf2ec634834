import ArgumentParser
import Engine
import Foundation
import Imaging
import Kernels
import Qwen3VL

/// `postlens bench`: the machine's limits and the engine's speed, measured in one run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure memory bandwidth, instruction peaks, load, vision, prefill and decode speed.",
        discussion: """
        With --random qwen3-vl-2b a checkpoint with the real 2B shapes and random weights is written once \
        (≈4.3 GB, under $POSTLENS_CACHE or ~/.cache/postlens) and timed; speed does not depend on weight values.
        """
    )

    @Option(help: ModelOptions.modelHelp)
    var model: String?

    @Option(help: "Time a random checkpoint with real shapes instead: \(RandomCheckpoint.names.joined(separator: ", ")).")
    var random: String?

    @OptionGroup var runtime: RuntimeOptions

    @Option(name: .customLong("image-size"), help: "Side of the square test image in pixels.")
    var imageSize: Int = 512

    @Option(name: .customLong("decode-tokens"), help: "Tokens to decode.")
    var decodeTokens: Int = 64

    @Flag(name: .customLong("no-runtime-cache"), help: "Convert the weights on both loads (no runtime-format weight cache).")
    var noRuntimeCache = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() async throws {
        do {
            try await measure()
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    func measure() async throws {
        runtime.applyThreads()
        let folder: URL
        if let random {
            guard RandomCheckpoint.names.contains(random) else { throw CLIError("unknown random model '\(random)'; known: \(RandomCheckpoint.names)") }
            let cache = ProcessInfo.processInfo.environment["POSTLENS_CACHE"].map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/postlens")
            folder = cache.appendingPathComponent("random/\(random)")
            log("writing or reusing random checkpoint at \(folder.path)")
            try RandomCheckpoint.write(to: folder)
        } else if let model {
            folder = try await resolveModelFolder(model)
        } else {
            throw CLIError("give --model DIR or --random qwen3-vl-2b")
        }

        let weightFormat = runtime.format
        var report: [String: Any] = ["format": weightFormat.rawValue, "threads": Parallel.threadCount, "max_image_tokens": runtime.maxImageTokens]
        let level = KernelDispatch.level
        let cpu = CPUFeatures.host
        report["cpu"] = cpu.brand
        report["cpu_extensions"] = cpu.extensionNames
        report["isa_level"] = level.description
        report["isa_levels_runnable"] = cpu.runnableLevels.map(\.description)
        report["openblas_core"] = BLASCore.name
        log("CPU \(cpu.brand), kernels at level \(level); measuring bandwidth and instruction peaks")
        // The limits of the instructions the active kernels use come first: OpenBLAS's threads keep spinning
        // for a while after a call, and on a 2-core machine that halved the int8 probe when it ran after the
        // sgemm probe (468 instead of 937 GOPS on Zen 4, below what the prefill itself reached). OpenBLAS's
        // sgemm is reported for reference only: only the f32 format uses it.
        let integerPeak = InstructionPeaks.integerGOPS(level)
        let fmaPeak = InstructionPeaks.fmaGFLOPS(level)
        let bandwidth = MachineProbe.readBandwidth()
        let gflops = MachineProbe.sgemmGFLOPS()
        report["bandwidth_gbps"] = bandwidth
        report["sgemm_gflops"] = gflops
        report["int8_peak_gops"] = integerPeak
        report["int8_peak_instruction"] = InstructionPeaks.integerInstruction(level).name
        report["fma_peak_gflops"] = fmaPeak

        // Cold: the checkpoint is converted (and, for Q8/Q4, the runtime cache written); warm: the
        // runtime cache is read. An existing cache file is removed first so the cold load is cold.
        let runtimeCache: RuntimeCacheOptions? = noRuntimeCache || weightFormat == .f32 ? nil : .environment
        if let runtimeCache, let stale = try? RuntimeCache.file(forModelAt: folder, format: weightFormat, options: runtimeCache),
           FileManager.default.fileExists(atPath: stale.path) {
            log("removing the runtime cache \(stale.path) so that the cold load converts")
            try? FileManager.default.removeItem(at: stale)
        }
        func load() throws -> InferenceEngine {
            let model = try Qwen3VLModel(directory: folder, format: weightFormat, runtimeCache: runtimeCache)
            let processor = try Qwen3VLProcessor(directory: folder, configuration: model.configuration)
            return InferenceEngine(model: model, processor: processor)
        }
        log("loading (cold)")
        var start = Date()
        var engine: InferenceEngine? = try load()
        report["load_ms_cold"] = ms(since: start)
        report["load_cold_converted_tensors"] = engine?.model.loadReport.convertedTensors
        report["load_cold_wrote_runtime_cache"] = engine?.model.loadReport.wroteRuntimeCache
        var peaks: [String: Double] = ["after_cold_load": MachineProbe.peakRSSMegabytes()]
        engine = nil
        log("loading (warm)")
        start = Date()
        engine = try load()
        report["load_ms_warm"] = ms(since: start)
        peaks["after_warm_load"] = MachineProbe.peakRSSMegabytes()
        report["load_warm_used_runtime_cache"] = engine?.model.loadReport.usedRuntimeCache
        report["load_warm_converted_tensors"] = engine?.model.loadReport.convertedTensors
        guard let engine else { return }

        let image = BenchInputs.testImage(side: imageSize)
        let question = "What does this post advertise, and at what price? Answer briefly in one sentence please."
        let messages = [ChatMessage(role: .user, content: [.image, .text(question)])]
        start = Date()
        let prompt = try engine.processor.prepare(messages, images: [image], maxPixels: runtime.maxPixels)
        let preprocessMs = ms(since: start)
        report["preprocess_ms"] = preprocessMs
        report["prompt_tokens"] = prompt.tokens.count
        report["image_tokens"] = prompt.imageTokenCount

        var parameters = GenerationParameters()
        parameters.maxTokens = decodeTokens
        log("running vision + prefill + \(decodeTokens) decode steps through the scheduler")
        // Random weights rarely emit EOS; the tokens actually decoded are reported.
        let result = try await engine.complete(InferenceEngine.Request(messages: messages, images: [image], parameters: parameters,
                                                                      maxPixels: runtime.maxPixels))
        let t = result.timings
        report["vision_ms"] = t.visionMs
        report["prefill_ms"] = t.prefillMs
        report["prefill_tokens_per_s"] = Double(prompt.tokens.count) / (t.prefillMs / 1000)
        report["ttft_ms"] = t.timeToFirstTokenMs
        report["decode_tokens"] = result.tokenIDs.count
        report["decode_tokens_per_s"] = t.decodeTokensPerSecond
        // Physical limits: decode reads every text weight once per token; prefill does 2 FLOPs per weight per token.
        let textBytes = Double(engine.model.text.weights.byteCount)
        let decodeLimit = bandwidth * 1e9 / textBytes
        let prefillLimit = gflops * 1e9 / (2 * Double(engine.model.text.weights.nonEmbeddingParameters))
        report["decode_bandwidth_limit_tokens_per_s"] = decodeLimit
        report["decode_fraction_of_limit"] = t.decodeTokensPerSecond / decodeLimit
        report["prefill_flops_limit_tokens_per_s"] = prefillLimit
        report["prefill_fraction_of_peak"] = (Double(prompt.tokens.count) / (t.prefillMs / 1000)) / prefillLimit
        let visionFLOPs = 2 * Double(engine.model.vision.weights.parameterCount) * Double(prompt.images[0].patchCount)
        report["vision_fraction_of_peak"] = visionFLOPs / (t.visionMs / 1000) / (gflops * 1e9)
        // Against the integer instruction the quantized products use (q8/q4 formats).
        let prefillOps = 2 * Double(engine.model.text.weights.nonEmbeddingParameters) * Double(prompt.tokens.count)
        report["prefill_fraction_of_int8_peak"] = integerPeak > 0 ? prefillOps / (t.prefillMs / 1000) / (integerPeak * 1e9) : 0
        report["vision_fraction_of_int8_peak"] = integerPeak > 0 ? visionFLOPs / (t.visionMs / 1000) / (integerPeak * 1e9) : 0

        log("follow-up question on the same image (vision and prefix caches)")
        var followParameters = GenerationParameters()
        followParameters.maxTokens = 8
        let follow = messages + [ChatMessage(role: .assistant, text: result.text),
                                 ChatMessage(role: .user, text: "And what is the original price?")]
        let second = try await engine.complete(InferenceEngine.Request(messages: follow, images: [image], parameters: followParameters,
                                                                      maxPixels: runtime.maxPixels))
        report["followup_ttft_ms"] = second.timings.timeToFirstTokenMs
        report["followup_cached_prompt_tokens"] = second.usage.cachedPromptTokens
        report["followup_vision_ms"] = second.timings.visionMs

        peaks["after_image_requests"] = MachineProbe.peakRSSMegabytes()
        log("batched decode for 1, 2, 4, 8 sequences")
        var batched: [String: Double] = [:]
        for batch in [1, 2, 4, 8] {
            batched[String(batch)] = BenchInputs.batchedDecodeTokensPerSecond(engine, sequences: batch, steps: 16)
        }
        report["batched_decode_tokens_per_s"] = batched
        peaks["after_batched_decode"] = MachineProbe.peakRSSMegabytes()

        log("JSON-schema mask cost per step")
        let mask = try BenchInputs.grammarMaskMilliseconds(engine)
        report["grammar_mask_ms_max"] = mask.max
        report["grammar_mask_ms_mean"] = mask.mean
        let stepMs = t.decodeTokensPerSecond > 0 ? 1000 / t.decodeTokensPerSecond : 0
        report["grammar_mask_fraction_of_decode_step"] = stepMs > 0 ? mask.max / stepMs : 0
        report["peak_rss_mb"] = MachineProbe.peakRSSMegabytes()
        // The high-water mark as it stood after each phase: says which phase set the peak.
        report["peak_rss_mb_by_phase"] = peaks

        if json {
            writeOut(jsonString(report) + "\n")
        } else {
            for key in report.keys.sorted() { writeOut("\(key): \(report[key]!)\n") }
        }
    }

    func ms(since date: Date) -> Double { Date().timeIntervalSince(date) * 1000 }

    /// Progress goes to stderr so that stdout stays one JSON object with --json.
    func log(_ message: String) { printError("bench: \(message)") }
}
