import Engine
import Foundation
import Imaging
import Qwen3VL
import Synchronization

/// What the server needs from a model: the parameters a request starts from, the image preprocessing budget,
/// and one event stream per request. `InferenceEngine` is the real one; tests may substitute a stand-in.
public protocol ChatEngine: Sendable {
    /// The model's recommended sampling (generation_config.json), before the request's own values.
    var defaultParameters: GenerationParameters { get }
    /// The preprocessor's pixel budget (`min_pixels` / `max_pixels`).
    var preprocessor: PreprocessorConfiguration { get }
    /// Streams `.delta` events, then one `.finished`; terminating the stream cancels the request.
    func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error>
    /// Cache and queue counters for `/metrics`; nil when the engine keeps none (the default, for stand-ins).
    var engineStatistics: InferenceEngine.Statistics? { get }
    /// The model's chat template: whether requests may think (`reasoning_content`).
    var chatTemplate: ChatTemplateKind { get }
}

extension ChatEngine {
    public var engineStatistics: InferenceEngine.Statistics? { nil }
    public var chatTemplate: ChatTemplateKind { .instruct }
}

extension InferenceEngine: ChatEngine {
    public var chatTemplate: ChatTemplateKind { processor.template }
    public var defaultParameters: GenerationParameters { .defaults(for: model) }
    public var preprocessor: PreprocessorConfiguration { processor.imageProcessor.configuration }
    public var engineStatistics: InferenceEngine.Statistics? { statistics() }
}

/// Holds the engine once it is loaded, so the server can listen (and answer `/health`) while a large
/// model is still being read.
public final class ModelHost: Sendable {
    public enum State: Sendable {
        case loading
        case ready(any ChatEngine)
        case failed(String)
    }

    public let modelID: String
    /// What is served (family member, thinking or not, shapes), read from the folder before the weights load;
    /// nil when the server was built without a folder (tests with a stand-in engine).
    public let description: ModelDescription?
    public let startedAt = Date()
    private let state: Mutex<State>

    public init(modelID: String, engine: (any ChatEngine)? = nil, description: ModelDescription? = nil) {
        self.modelID = modelID
        self.description = description
        state = Mutex(engine.map { .ready($0) } ?? .loading)
    }

    public var current: State { state.withLock { $0 } }

    public func setReady(_ engine: any ChatEngine) { state.withLock { $0 = .ready(engine) } }
    public func setFailed(_ message: String) { state.withLock { $0 = .failed(message) } }
}

/// A bounded count of requests in flight. A ticket is released when it is deinitialised, so a
/// streaming response holds its place until its body closure is gone, however it ends.
final class AdmissionGate: Sendable {
    let limit: Int
    private let count = Mutex(0)

    init(limit: Int) { self.limit = limit }

    var inFlight: Int { count.withLock { $0 } }

    /// A ticket, or nil when `limit` requests are already in flight.
    func enter() -> Ticket? {
        let admitted = count.withLock { value -> Bool in
            guard value < limit else { return false }
            value += 1
            return true
        }
        return admitted ? Ticket(gate: self) : nil
    }

    fileprivate func leave() { count.withLock { $0 -= 1 } }

    final class Ticket: Sendable {
        private let gate: AdmissionGate
        fileprivate init(gate: AdmissionGate) { self.gate = gate }
        deinit { gate.leave() }
    }
}
