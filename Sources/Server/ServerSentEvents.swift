import Foundation
import HTTPTypes
import NIOCore

/// Server-sent events as OpenAI's streaming API writes them: each event one `data: <JSON>` line and a blank line, the
/// stream closed by `data: [DONE]`. The one place that framing is written (the chat stream's chunks and its in-band
/// errors alike).
enum ServerSentEvents {
    static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]

    /// `data: <value as JSON>\n\n`.
    static func event(_ value: some Encodable, encoder: JSONEncoder) throws -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(try encoder.encode(value))
        buffer.writeString("\n\n")
        return buffer
    }

    /// The event that ends an OpenAI stream.
    static var done: ByteBuffer { ByteBuffer(string: "data: [DONE]\n\n") }
}
