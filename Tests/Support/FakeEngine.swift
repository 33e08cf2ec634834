import Analysis
import Engine
import Foundation
import JSON
import Qwen3VL

/// A stand-in for the model, for tests of the machinery around it (batches, resume, queue workers, error accounting):
/// it plugs in behind `ChatEngine`, the protocol the server, `postlens analyze` and the workers use for the real engine,
/// so everything from the analyzer on runs as in the product. It streams back, after an optional delay, the example
/// answer of the task named by the request's JSON schema (`TaskExamples`), or for a dense-OCR tile a line unique to the
/// tile's index (`tileLine`). It lives in the test targets only.
public final class FakeEngine: ChatEngine {
    public let defaultParameters = GenerationParameters()
    public let preprocessor = PreprocessorConfiguration.qwen3VL
    public let delay: Duration

    public init(delay: Duration = .zero) { self.delay = delay }

    /// The analyzer the product would build around it.
    public static func analyzer(delay: Duration = .zero) -> EngineAnalyzer { EngineAnalyzer(engine: FakeEngine(delay: delay)) }

    public func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
        let (delay, text) = (delay, Self.answer(request))
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    if delay > .zero { try await Task.sleep(for: delay) }
                    continuation.yield(.delta(text: text, tokenIDs: [1], logprobs: []))
                    continuation.yield(.finished(GenerationResult(text: text, tokenIDs: [1], finishReason: .stop,
                                                                  usage: Usage(promptTokens: 10, completionTokens: 5,
                                                                               imageTokens: request.images.isEmpty ? 0 : 4),
                                                                  timings: Timings(), logprobs: [])))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The example answer of the request's task; a dense-OCR tile's prompt ("tile 3 of 6", "第 3/6 块") gets its line.
    public static func answer(_ request: InferenceEngine.Request) -> String {
        let prompt = request.messages.last?.content.compactMap { part -> String? in
            if case .text(let text) = part { return text }
            return nil
        }.joined() ?? ""
        if let index = tileIndex(prompt) { return #"{"lines": ["\#(tileLine(index))"]}"# }
        guard case .jsonSchema(let name, _, _)? = request.parameters.responseFormat,
              let kind = TaskKind(rawValue: String(name.prefix { $0 != "@" })), kind != .custom,
              let task = try? AnalysisTask.builtIn(kind)
        else { return "{}" }
        return TaskExamples.modelOutput(for: task).sortedText
    }

    /// A line unique to a tile's index, unlike every other tile's (OCR line merging treats near-equal lines as one).
    public static func tileLine(_ index: Int) -> String {
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]
        return words[index % words.count] + " " + words[(index / words.count + 5) % words.count] + " \(index)"
    }

    /// The 0-based tile index a dense-OCR prompt names.
    static func tileIndex(_ prompt: String) -> Int? {
        if let match = prompt.firstMatch(of: #/tile (\d+) of \d+/#) ?? prompt.firstMatch(of: #/第 (\d+)/\d+ 块/#),
           let number = Int(match.1) { return number - 1 }
        return nil
    }
}
