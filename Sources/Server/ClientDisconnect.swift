import Hummingbird
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The request context of every route: Hummingbird's basic context (its logger carries `hb.request.id`) plus the
/// connection the request came in on, so that a handler can notice its client going away (`ConnectionWatchers`).
public struct ServerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The request's connection; in router tests a stand-in channel that no watcher knows.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// A request context that knows its connection.
protocol ConnectionContext: RequestContext {
    var channel: any Channel { get }
}

extension ServerContext: ConnectionContext {}

/// Notices clients that go away while their request is still being worked on, so that its generation is cancelled
/// (at the engine's next step) instead of running on to `max_tokens` for nobody.
///
/// `buildApplication` puts one `ConnectionWatcher` in each connection's channel pipeline (Hummingbird's
/// `additionalChannelHandlers`); it registers itself here under its channel while it is in the pipeline. A handler
/// finds the watcher of its request's connection with `watcher(for:)`: nil in router tests, whose requests come through
/// no connection, so they take the plain path.
///
/// Why not the channel's `closeFuture`: the server allows half-closure, so a client's `close()` arrives as the
/// `inputClosed` event and the channel stays open until the response has been written. Why not Hummingbird's
/// `RequestBody.consumeWithCancellationOnInboundClose`: it reads the connection's inbound stream itself and ends it
/// (by cancelling its reader) when the handler returns, so the connection closes after every response and HTTP
/// keep-alive is lost. The watcher only listens to pipeline events and reads nothing.
public final class ConnectionWatchers: Sendable {
    private let watchers = Mutex<[ObjectIdentifier: ConnectionWatcher]>([:])

    public init() {}

    /// A new watcher for one connection's pipeline.
    func makeHandler() -> ConnectionWatcher { ConnectionWatcher(registry: self) }

    /// The watcher of the connection that `channel` is, if it has one.
    func watcher(for channel: any Channel) -> ConnectionWatcher? {
        watchers.withLock { $0[ObjectIdentifier(channel)] }
    }

    fileprivate func register(_ watcher: ConnectionWatcher, for channel: any Channel) {
        watchers.withLock { $0[ObjectIdentifier(channel)] = watcher }
    }

    fileprivate func unregister(_ watcher: ConnectionWatcher, for channel: any Channel) {
        watchers.withLock { list in
            if list[ObjectIdentifier(channel)] === watcher { list[ObjectIdentifier(channel)] = nil }
        }
    }
}

/// One connection's watcher: hears the client close its side (`inputClosed`, or the channel going inactive) and then
/// runs the actions that requests on this connection registered. Every event is passed on unchanged.
final class ConnectionWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPRequestPart

    private struct State {
        var closed = false
        var nextToken = 0
        var actions: [Int: @Sendable () -> Void] = [:]
    }

    private let registry: ConnectionWatchers
    private let state = Mutex(State())

    fileprivate init(registry: ConnectionWatchers) {
        self.registry = registry
    }

    /// Runs `action` once, when the client closes its side — at once if it already has (then the answer is nil).
    /// Otherwise the answer is a token for `removeAction`.
    func onClose(_ action: @escaping @Sendable () -> Void) -> Int? {
        let token: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            state.nextToken += 1
            state.actions[state.nextToken] = action
            return state.nextToken
        }
        if token == nil { action() }
        return token
    }

    /// Forgets the action of `token`; false when it is no longer pending because the client has closed (it has
    /// run, or is about to).
    @discardableResult
    func removeAction(_ token: Int) -> Bool {
        state.withLock { $0.actions.removeValue(forKey: token) != nil }
    }

    private func markClosed() {
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.closed else { return [] }
            state.closed = true
            let actions = Array(state.actions.values)
            state.actions = [:]
            return actions
        }
        for action in actions { action() }
    }

    // MARK: ChannelInboundHandler

    func handlerAdded(context: ChannelHandlerContext) {
        registry.register(self, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.unregister(self, for: context.channel)
        markClosed()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { markClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.unregister(self, for: context.channel)
        markClosed()
        context.fireChannelInactive()
    }

    /// Runs `operation` in a task of its own that is cancelled as soon as the client closes its side of the
    /// connection. If that happens before the operation is over, the request ends with `ServerError.clientDisconnected`
    /// (499: the client is gone, so it is for the log and the metrics), whatever the cancelled operation made of it.
    /// Cancelling the caller cancels the operation too.
    func cancellingOnClose<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await operation() }
        let token = onClose { task.cancel() }
        let result = await withTaskCancellationHandler { await task.result } onCancel: { task.cancel() }
        // Still pending: the client did not go away while the operation ran.
        let cancelledByClose = token.map { !removeAction($0) } ?? true
        if cancelledByClose { throw ServerError.clientDisconnected }
        return try result.get()
    }
}

extension ConnectionWatchers {
    /// Runs `operation` so that it is cancelled if the client of `context`'s connection goes away before it is
    /// over (see `ConnectionWatcher.cancellingOnClose`); without a watcher (router tests) it just runs it.
    func cancellingOnDisconnect<T: Sendable>(of context: some ConnectionContext,
                                             _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let watcher = watcher(for: context.channel) else { return try await operation() }
        return try await watcher.cancellingOnClose(operation)
    }
}
