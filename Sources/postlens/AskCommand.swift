import ArgumentParser
import Engine
import Foundation
import Imaging
import Qwen3VL

/// `postlens ask`: one question, with images, answered on the terminal as it is generated.
struct AskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ask",
        abstract: "Ask a question about images; the answer streams to stdout.",
        discussion: "PROMPT may be '-' to read it from standard input. Errors go to stderr with a non-zero exit."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("image"), help: "An image file (JPEG, PNG, WebP, GIF, BMP); repeat for several.")
    var images: [String] = []

    @Option(help: "A system prompt.")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.")
    var maxTokens: Int = 512

    @Option(help: "Sampling temperature (0 = greedy). Default: the model's generation_config.json.")
    var temperature: Double?

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass.")
    var topP: Double?

    @Option(name: .customLong("top-k"), help: "Sample among the k most likely tokens.")
    var topK: Int?

    @Option(help: "Seed for reproducible sampling.")
    var seed: UInt64?

    @Flag(name: .customLong("no-think"), help: "Thinking models: answer without reasoning first (an empty think block).")
    var noThink = false

    @Option(name: .customLong("max-reasoning-tokens"), help: "Thinking models: close the think block after this many tokens and answer.")
    var maxReasoningTokens: Int?

    @Flag(help: "Print one JSON object (text, reasoning, token_ids, finish_reason, usage, timings) instead of streaming.")
    var json = false

    @Argument(help: "The question, or '-' for standard input.")
    var prompt: String

    func run() async throws {
        do {
            try await answer()
        } catch {
            printError("error: \(error)")
            throw ExitCode.failure
        }
    }

    func answer() async throws {
        let question = prompt == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : prompt
        // Decode images before loading the model: a bad file fails fast.
        let decoded = try images.map { path -> RGBImage in
            guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read image \(path)") }
            do { return try ImageDecoder.decode(data) } catch { throw CLIError("\(path): \(error)") }
        }
        let engine = try await modelOptions.loadEngine()

        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: .system, text: system)) }
        messages.append(ChatMessage(role: .user, content: decoded.map { _ in ContentPart.image } + [.text(question)]))

        var parameters = GenerationParameters.defaults(for: engine.model)
        parameters.maxTokens = maxTokens
        if let temperature { parameters.sampling.temperature = temperature }
        if let topP { parameters.sampling.topP = topP }
        if let topK { parameters.sampling.topK = topK }
        parameters.sampling.seed = seed
        parameters.repetitionGuard = RepetitionGuard()  // an answer that loops ends (finish_reason "repetition")
        parameters.thinking = ThinkingParameters(enabled: !noThink, maxReasoningTokens: maxReasoningTokens)

        let request = InferenceEngine.Request(messages: messages, images: decoded, parameters: parameters,
                                                maxPixels: modelOptions.runtime.maxPixels)
        var result: GenerationResult?
        for try await event in engine.generate(request) {
            switch event {
            case .delta(let text, _, _):
                if !json { writeOut(text) }
            case .reasoning(let text, _):
                // A thinking model's reasoning goes to stderr: stdout carries the answer alone.
                if !json { FileHandle.standardError.write(Data(text.utf8)) }
            case .finished(let r):
                result = r
            }
        }
        guard let result else { throw CLIError("generation ended without a result") }
        if result.reasoning != nil && !json { printError("") }
        if json {
            writeOut(jsonString(Self.jsonObject(result)) + "\n")
        } else {
            writeOut("\n")
        }
    }

    static func jsonObject(_ r: GenerationResult) -> [String: Any] {
        [
            "text": r.text,
            "reasoning": r.reasoning.map { $0 as Any } ?? NSNull(),
            "token_ids": r.tokenIDs,
            "finish_reason": r.finishReason.rawValue,
            "usage": [
                "prompt_tokens": r.usage.promptTokens,
                "completion_tokens": r.usage.completionTokens,
                "image_tokens": r.usage.imageTokens,
                "reasoning_tokens": r.usage.reasoningTokens,
                "total_tokens": r.usage.totalTokens,
            ],
            "timings": [
                "preprocess_ms": r.timings.preprocessMs,
                "vision_ms": r.timings.visionMs,
                "prefill_ms": r.timings.prefillMs,
                "decode_ms": r.timings.decodeMs,
                "ttft_ms": r.timings.timeToFirstTokenMs,
                "decode_tokens_per_s": r.timings.decodeTokensPerSecond,
            ],
        ]
    }
}
