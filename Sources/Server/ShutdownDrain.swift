import Engine
import Synchronization

/// Ends the streams still running when a graceful shutdown's grace period runs out, so that each client gets an
/// in-band error event and `[DONE]` (a clean end) instead of a connection cut mid-chunk. `ServerRunner` calls
/// `drainAll()`; tests may too.
public final class ShutdownDrain: Sendable {
    private struct State {
        var nextID = 0
        var handlers: [Int: @Sendable () -> Void] = [:]
        var drained = false
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether `drainAll()` has been called.
    public var isDrained: Bool { state.withLock { $0.drained } }

    /// Ends every registered stream with `ServerError.shuttingDown`, and any stream made from now on at once.
    public func drainAll() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            state.drained = true
            defer { state.handlers = [:] }
            return Array(state.handlers.values)
        }
        for handler in handlers { handler() }
    }

    /// The engine's events, passed through until a drain: then the engine's stream is dropped (which cancels the
    /// generation before its next step) and this one ends by throwing `ServerError.shuttingDown`.
    func drainable(_ stream: AsyncThrowingStream<GenerationEvent, Error>) -> AsyncThrowingStream<GenerationEvent, Error> {
        let (events, continuation) = AsyncThrowingStream<GenerationEvent, Error>.makeStream()
        let pump = Task {
            do {
                for try await event in stream { continuation.yield(event) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let id = register {
            continuation.finish(throwing: ServerError.shuttingDown)
            pump.cancel()
        }
        continuation.onTermination = { [weak self] _ in
            pump.cancel()
            if let id { self?.unregister(id) }
        }
        return events
    }

    /// Registers a handler; nil when already drained (the handler then ran at once).
    private func register(_ handler: @escaping @Sendable () -> Void) -> Int? {
        let id = state.withLock { state -> Int? in
            guard !state.drained else { return nil }
            state.nextID += 1
            state.handlers[state.nextID] = handler
            return state.nextID
        }
        if id == nil { handler() }
        return id
    }

    private func unregister(_ id: Int) {
        _ = state.withLock { $0.handlers.removeValue(forKey: id) }
    }
}
