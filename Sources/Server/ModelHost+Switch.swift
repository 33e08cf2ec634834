import Engine
import Foundation
import Logging

/// Loading the served model, and switching to another offered one (`POST /v1/models/load`, the page's model picker).
///
/// One model in memory at a time (a 2B and an 8B together do not fit many machines): a switch first turns new
/// requests away (503 `model_loading`, as at start-up), lets the requests in flight finish on the old engine, waits
/// until that engine is gone (its last reference dropped, its scheduler thread ended), and only then reads the new
/// weights. A new model that fails to load is not left as a dead server: the previous one is loaded again and
/// `/health` reports the failure as `switch_error`. Observers (`observe`) hear of both ends: the server's batch worker
/// stops claiming items when a switch starts (it finishes those in flight) and starts again on the new engine.
extension ModelHost {
    /// Why the last switch failed, if it did (cleared when the next one starts).
    public var switchError: String? { slot.withLock { $0.switchError } }

    public enum SwitchOutcome: Sendable, Equatable { case alreadyServed, started }

    /// Loads the first model on a plain thread (reading weights must not block Swift's cooperative pool, which also
    /// runs the HTTP server: `/health` answers `loading` meanwhile). `onFailure` runs on that thread.
    public func startLoading(logger: Logger, onFailure: @escaping @Sendable (Error) -> Void) {
        Thread.detachNewThread { [self] in
            if let error = load(slot.withLock { $0.served }, fallback: nil, logger: logger) { onFailure(error) }
        }
    }

    /// Serves the offered model `id` from now on. Returns `.alreadyServed` when it is (nothing happens), else starts
    /// the switch and returns at once; `GET /health` says `loading` until the new model is ready.
    /// Refused (409) while the first model is still loading or while another switch runs.
    func switchModel(to id: String, drainLimit: Duration, logger: Logger) throws -> SwitchOutcome {
        guard let target = choices.firstIndex(where: { $0.id == id }) else { throw ServerError.unknownModel(id) }
        let previous: (index: Int, engine: (any ChatEngine)?)? = try slot.withLock { slot in
            if slot.served == target, !slot.switching, case .ready = slot.state { return nil }
            guard loader != nil else {
                throw ServerError.modelSwitchRefused("this server serves only '\(choices[slot.served].id)'; start it with --offer MODEL to offer others")
            }
            guard choices[target].folder != nil else {
                throw ServerError.modelSwitchRefused("'\(id)' is still being downloaded; switch once it has arrived")
            }
            guard !slot.switching else {
                throw ServerError.modelSwitchRefused("a switch to '\(choices[slot.served].id)' is under way; wait until GET /health says ready")
            }
            var engine: (any ChatEngine)?
            switch slot.state {
            case .loading: throw ServerError.modelSwitchRefused("'\(choices[slot.served].id)' is still loading; switch once GET /health says ready")
            case .ready(let e): engine = e
            case .failed: engine = nil
            }
            let from = slot.served
            slot = Slot(served: target, state: .loading(LoadingProgress(phase: .reading)), switching: true, switchError: nil)
            return (from, engine)
        }
        guard let previous else { return .alreadyServed }
        // Only the watch may see the old engine from here on: the thread must not keep it alive.
        let watch = ReleaseWatch(previous.engine), fallback = previous.index, from = choices[fallback].id
        logger.info("switching model", metadata: ["from": "\(from)", "to": "\(id)"])
        Thread.detachNewThread { [self] in
            notify(.switching)
            if !watch.waitUntilReleased(upTo: drainLimit) {
                logger.warning("requests still run on the previous model; loading the new one beside it",
                               metadata: ["from": "\(from)", "waited_s": "\(drainLimit.components.seconds)"])
            }
            load(target, fallback: fallback, logger: logger)
        }
        return .started
    }

    /// Reads `choices[index]` on the calling (plain) thread and serves it. On failure: loads `fallback` again when
    /// given (recording the failure as `switchError`), else the host is `.failed`. Returns the first error.
    @discardableResult
    func load(_ index: Int, fallback: Int?, logger: Logger) -> Error? {
        let choice = choices[index], start = Date()
        readingWeights()
        do {
            guard let loader else { throw ServerError.modelFailed("no loader for '\(choice.id)'") }
            let engine = try loader(choice)
            slot.withLock { slot in
                slot.state = .ready(engine)
                slot.switching = false
            }
            notify(.ready)
            logger.info("model ready", metadata: ["model": "\(choice.id)", "load_s": "\(String(format: "%.1f", Date().timeIntervalSince(start)))"])
            return nil
        } catch {
            logger.error("model failed to load", metadata: ["model": "\(choice.id)", "error": "\(error)"])
            guard let fallback else {
                slot.withLock { slot in
                    slot.state = .failed("\(error)")
                    slot.switching = false
                }
                return error
            }
            slot.withLock { slot in
                slot.served = fallback
                slot.switchError = "'\(choice.id)' failed to load: \(error); '\(choices[fallback].id)' is served again"
            }
            load(fallback, fallback: nil, logger: logger)
            return error
        }
    }
}

/// Watches an engine the host no longer holds until its last reference is gone (requests in flight hold it; its
/// deinit stops the scheduler thread and frees the weights).
private final class ReleaseWatch: @unchecked Sendable {
    private weak var object: AnyObject?
    init(_ engine: (any ChatEngine)?) { object = engine.map { $0 as AnyObject } }

    /// true once released (or nothing was held); false when `limit` passed first.
    func waitUntilReleased(upTo limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while object != nil {
            if ContinuousClock.now >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return true
    }
}
