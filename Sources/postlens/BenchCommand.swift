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
        abstract: "Measure memory bandwidth, sgemm peak, load, vision, prefill and decode speed.",
        discussion: """
        With --random qwen3-vl-2b a checkpoint with the real 2B shapes and random weights is written once \
        (≈4.3 GB, under $POSTLENS_CACHE or ~/.cache/postlens) and timed; speed does not depend on weight values.
        """
    )

    @Option(help: "Model folder to time.")
    var model: String?

    @Option(help: "Time a random checkpoint with real shapes: \(RandomCheckpoint.names.joined(separator: ", ")).")
    var random: String?

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("image-size"), help: "Side of the square test image in pixels.")
    var imageSize: Int = 512

    @Option(name: .customLong("decode-tokens"), help: "Tokens to decode.")
    var decodeTokens: Int = 64

    @Option(help: "Runtime weight format: f32, q8 or q4.")
    var format: String = "f32"

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
        Parallel.setThreadCount(threads ?? Parallel.threadCount)
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

        guard let weightFormat = WeightFormat(rawValue: format) else { throw CLIError("unknown format '\(format)'; use f32, q8 or q4") }
        var report: [String: Any] = ["format": format, "threads": Parallel.threadCount]
        log("measuring memory bandwidth and sgemm peak")
        let bandwidth = MachineProbe.readBandwidth()
        let gflops = MachineProbe.sgemmGFLOPS()
        report["bandwidth_gbps"] = bandwidth
        report["sgemm_gflops"] = gflops

        log("loading (cold)")
        var start = Date()
        var engine: InferenceEngine? = try InferenceEngine(directory: folder, format: weightFormat)
        report["load_ms_cold"] = ms(since: start)
        engine = nil
        log("loading (warm)")
        start = Date()
        engine = try InferenceEngine(directory: folder, format: weightFormat)
        report["load_ms_warm"] = ms(since: start)
        guard let engine else { return }

        let image = BenchInputs.testImage(side: imageSize)
        let question = "What does this post advertise, and at what price? Answer briefly in one sentence please."
        let messages = [ChatMessage(role: .user, content: [.image, .text(question)])]
        start = Date()
        let prompt = try engine.processor.prepare(messages, images: [image])
        let preprocessMs = ms(since: start)
        report["preprocess_ms"] = preprocessMs
        report["prompt_tokens"] = prompt.tokens.count
        report["image_tokens"] = prompt.imageTokenCount

        var parameters = GenerationParameters()
        parameters.maxTokens = decodeTokens
        parameters.stop = []
        log("running vision + prefill + \(decodeTokens) decode steps")
        // EOS is disabled by a huge max and random weights rarely emit it; we report tokens actually decoded.
        let result = try engine.generator.generate(prompt, parameters: parameters)
        let t = result.timings
        report["vision_ms"] = t.visionMs
        report["prefill_ms"] = t.prefillMs
        report["prefill_tokens_per_s"] = Double(prompt.tokens.count) / (t.prefillMs / 1000)
        report["ttft_ms"] = preprocessMs + t.visionMs + t.prefillMs
        report["decode_tokens"] = result.tokenIDs.count
        report["decode_tokens_per_s"] = t.decodeTokensPerSecond
        // Physical limits of this phase: decode reads every text weight once per token.
        let textBytes = Double(engine.model.text.weights.byteCount)
        report["decode_bandwidth_limit_tokens_per_s"] = bandwidth * 1e9 / textBytes
        report["prefill_flops_limit_tokens_per_s"] = gflops * 1e9 / (2 * Double(engine.model.text.weights.nonEmbeddingParameters))
        report["peak_rss_mb"] = MachineProbe.peakRSSMegabytes()

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
