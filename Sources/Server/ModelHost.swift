import Analysis
import Engine
import Foundation
import Imaging
import Qwen3VL
import Synchronization

/// A model the server may serve: the id clients send as `model`, its folder, and what it is (read from the folder
/// without loading weights). `postlens serve --model M --offer N …` makes one per model; the first is loaded at start.
/// A model still to be downloaded has no folder or description yet (`ModelHost.located` fills them in).
public struct ModelChoice: Sendable {
    public let id: String
    /// nil for a stand-in engine in tests (nothing to load), and for a model still being downloaded.
    public var folder: URL?
    public var description: ModelDescription?

    public init(id: String, folder: URL?, description: ModelDescription?) {
        self.id = id
        self.folder = folder
        self.description = description
    }
}

/// Reads a choice's weights into an engine: seconds of blocking work, always called on a plain thread.
public typealias EngineLoader = @Sendable (ModelChoice) throws -> any ChatEngine

/// Holds the served engine, so the server can listen (and answer `/health`) while a large model is still being
/// read, and can switch to another offered model (`ModelHost+Switch.swift`) with one model in memory at a time.
public final class ModelHost: Sendable {
    public enum State: Sendable {
        /// Not ready yet, and how far it has come (downloading, reading weights).
        case loading(LoadingProgress)
        case ready(any ChatEngine)
        case failed(String)
    }

    /// What is served and how far it is, under one lock so a request sees an engine with its own id.
    struct Slot: Sendable {
        var served: Int
        var state: State
        /// A switch is under way (old engine draining, new one loading, or the previous one coming back).
        var switching = false
        /// Why the last switch did not happen (the new model failed to load); cleared by the next switch.
        var switchError: String?
    }

    /// What observers hear: a switch has started (new requests are turned away; the old engine is to be let go), or a
    /// model is ready (after the first load or a switch).
    public enum Event: Sendable { case switching, ready }

    /// Every model this server may serve, the one it starts with first.
    public var choices: [ModelChoice] { offered.withLock { $0 } }
    private let offered: Mutex<[ModelChoice]>
    let loader: EngineLoader?
    public let startedAt = Date()
    let slot: Mutex<Slot>
    private let observers = Mutex<[@Sendable (Event) -> Void]>([])

    /// One model, ready (`engine`) or loading; without a loader it cannot switch.
    public convenience init(modelID: String, engine: (any ChatEngine)? = nil, description: ModelDescription? = nil) {
        self.init(choices: [ModelChoice(id: modelID, folder: nil, description: description)], loader: nil, engine: engine)
    }

    /// The models of `serve --model … --offer …`; `engine` when the first one is already loaded, else it is loading
    /// (`startLoading`).
    public init(choices: [ModelChoice], loader: EngineLoader?, engine: (any ChatEngine)? = nil) {
        precondition(!choices.isEmpty, "a model host needs at least one model")
        offered = Mutex(choices)
        self.loader = loader
        slot = Mutex(Slot(served: 0, state: engine.map { .ready($0) } ?? .loading(LoadingProgress())))
    }

    /// The served model (or the one loading).
    public var served: ModelChoice { choices[slot.withLock { $0.served }] }
    public var modelID: String { served.id }
    public var description: ModelDescription? { served.description }
    public var current: State { slot.withLock { $0.state } }
    /// The served model and its state, read together.
    public var snapshot: (choice: ModelChoice, state: State) {
        let (served, state) = slot.withLock { ($0.served, $0.state) }
        return (choices[served], state)
    }

    /// The engine with the id it serves under, or 503 while loading / after a failed load.
    func ready() throws -> (engine: any ChatEngine, id: String) {
        let (choice, state) = snapshot
        switch state {
        case .ready(let engine): return (engine, choice.id)
        case .loading: throw ServerError.modelLoading
        case .failed(let reason): throw ServerError.modelFailed(reason)
        }
    }

    /// The engine, or 503 while loading / after a failed load.
    func readyEngine() throws -> any ChatEngine { try ready().engine }

    /// Calls `observer` on every `Event`, on the thread that loads models (it must not block).
    public func observe(_ observer: @escaping @Sendable (Event) -> Void) { observers.withLock { $0.append(observer) } }

    func notify(_ event: Event) {
        for observer in observers.withLock({ $0 }) { observer(event) }
    }

    public func setReady(_ engine: any ChatEngine) { slot.withLock { $0.state = .ready(engine) } }
    public func setFailed(_ message: String) { slot.withLock { $0.state = .failed(message) } }

    /// A model downloaded after the server started listening has arrived: its folder and what it is.
    public func located(_ index: Int, folder: URL, description: ModelDescription) {
        offered.withLock { choices in
            choices[index].folder = folder
            choices[index].description = description
        }
    }

    /// While the served model loads: its files are arriving (`completed` of `total` bytes, `file` the one in progress).
    public func downloading(completedBytes: Int64, totalBytes: Int64, file: String?) {
        update(LoadingProgress(phase: .downloading, completedBytes: completedBytes, totalBytes: totalBytes, file: file))
    }

    /// While the served model loads: its weights are being read and converted.
    public func readingWeights() { update(LoadingProgress(phase: .reading)) }

    private func update(_ progress: LoadingProgress) {
        slot.withLock { slot in
            if case .loading = slot.state { slot.state = .loading(progress) }
        }
    }
}

/// How far a server that is not ready yet has come (`GET /health`'s `loading` object).
public struct LoadingProgress: Sendable, Equatable {
    public enum Phase: String, Sendable {
        /// Finding the model (a folder, the Hugging Face cache) before any download or read.
        case starting
        /// Fetching the model's files from the Hub.
        case downloading
        /// Reading the weights and converting them to the runtime format (or reading the runtime cache).
        case reading
    }

    public var phase: Phase = .starting
    public var completedBytes: Int64 = 0
    public var totalBytes: Int64 = 0
    public var file: String?

    public init(phase: Phase = .starting, completedBytes: Int64 = 0, totalBytes: Int64 = 0, file: String? = nil) {
        self.phase = phase
        self.completedBytes = completedBytes
        self.totalBytes = totalBytes
        self.file = file
    }
}

/// A bounded count of requests in flight. A ticket is released when it is deinitialised, so a
/// streaming response holds its place until its body closure is gone, however it ends.
final class AdmissionGate: AdmissionControl {
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

    /// `enter()` as batch items ask for a place (`EngineAnalyzer`).
    func admit() -> (any Sendable)? { enter() }

    fileprivate func leave() { count.withLock { $0 -= 1 } }

    final class Ticket: Sendable {
        private let gate: AdmissionGate
        fileprivate init(gate: AdmissionGate) { self.gate = gate }
        deinit { gate.leave() }
    }
}
