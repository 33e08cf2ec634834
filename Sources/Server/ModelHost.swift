import Analysis
import Engine
import Foundation
import Imaging
import Qwen3VL
import Synchronization

/// Holds the engine once it is loaded, so the server can listen (and answer `/health`) while the model is still being
/// downloaded or read; says how far that has come.
public final class ModelHost: Sendable {
    public enum State: Sendable {
        case loading(LoadingProgress)
        case ready(any ChatEngine)
        case failed(String)
    }

    public let modelID: String
    public let startedAt = Date()
    private let state: Mutex<State>

    public init(modelID: String, engine: (any ChatEngine)? = nil) {
        self.modelID = modelID
        state = Mutex(engine.map { .ready($0) } ?? .loading(LoadingProgress()))
    }

    public var current: State { state.withLock { $0 } }

    public func setReady(_ engine: any ChatEngine) { state.withLock { $0 = .ready(engine) } }
    public func setFailed(_ message: String) { state.withLock { $0 = .failed(message) } }

    /// While loading: the model's files are arriving (`completed` of `total` bytes, `file` the one in progress).
    public func downloading(completedBytes: Int64, totalBytes: Int64, file: String?) {
        update(LoadingProgress(phase: .downloading, completedBytes: completedBytes, totalBytes: totalBytes, file: file))
    }

    /// While loading: the weights are being read and converted.
    public func readingWeights() { update(LoadingProgress(phase: .reading)) }

    private func update(_ progress: LoadingProgress) {
        state.withLock { s in
            if case .loading = s { s = .loading(progress) }
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
