import Hummingbird
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

// Connections that cannot be held: a body over the limit is answered and its connection closed (never drained
// without end), a body must arrive within the client timeout, and a stream whose client stops reading is ended.
// Hummingbird's own idle timeout (the same setting) closes connections that send no complete request head in time
// and keep-alive connections left idle; requests enter the admission gate only once their body is in, so a slow
// upload never holds a queue slot.

/// Refuses a body whose `Content-Length` already says it is over the limit, before a byte of it is read.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The limit for a path (the conversation API's import takes larger bodies than the model routes).
    let limit: @Sendable (String) -> Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit(request.uri.path) {
            throw HTTPError(.contentTooLarge)
        }
        return try await next(request, context)
    }
}

/// Reads a request body within `limit` bytes and `timeout`. When the time runs out the connection is closed (the
/// client is too slow to be answered) and the request ends with 408.
func readBody(_ request: Request, context: some RequestContext, limit: Int, timeout: Duration) async throws -> ByteBuffer {
    guard let channel = (context as? any ConnectionContext)?.channel, channel.isActive else {
        return try await request.body.collect(upTo: limit)
    }
    let timedOut = TimeoutFlag()
    let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
        timedOut.set()
        channel.close(promise: nil)
    }
    defer { timer.cancel() }
    do {
        return try await request.body.collect(upTo: limit)
    } catch {
        if timedOut.isSet { throw ServerError.bodyTimeout(seconds: Int(timeout.components.seconds)) }
        throw error
    }
}

/// Set once by a timer, read by the request it timed.
private final class TimeoutFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}

/// Runs one write of a streamed response; if the client has not taken it within `timeout` (it stopped reading), the
/// connection is closed, which fails the write and ends the stream, its generation and its queue slot.
func writeWithin<T>(_ timeout: Duration, on channel: (any Channel)?, _ write: () async throws -> T) async throws -> T {
    guard let channel else { return try await write() }
    let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { channel.close(promise: nil) }
    defer { timer.cancel() }
    return try await write()
}

/// Closes a connection once a response that says `Connection: close` has been written: first its sending side, so
/// the client reads the answer and sees the end of it, then — after `linger`, during which whatever the client is
/// still sending is read and dropped — all of it. Without this a 413 would be followed by draining an unbounded body.
final class CloseAfterResponseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let linger: TimeAmount
    private var closing = false
    private var closed = false

    init(linger: TimeAmount = .seconds(2)) {
        self.linger = linger
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        switch part {
        case .head(let head):
            if head.headerFields[.connection]?.lowercased() == "close" { closing = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            guard closing else {
                context.write(data, promise: promise)
                return
            }
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.writeAndFlush(data, promise: written)
            let loop = context.eventLoop
            let linger = self.linger
            let bound = NIOLoopBound(context, eventLoop: loop)
            written.futureResult.whenComplete { _ in
                bound.value.close(mode: .output, promise: nil)
                loop.scheduleTask(in: linger) { bound.value.close(promise: nil) }
            }
            closed = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After the closing answer, the rest of the request is dropped here rather than handed on.
        guard !closed else { return }
        context.fireChannelRead(data)
    }
}
