import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to a live test server, for what HTTP client libraries will not do: headers that never end,
/// bodies that trickle or never stop, a Host of the test's choosing. Every read has a deadline.
///
/// The socket calls block, so they run on a queue of the connection's own (`async` methods): blocking Swift's
/// cooperative pool, which also runs the servers under test, would stall those servers.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private let queue = DispatchQueue(label: "raw-connection")

    /// Connects to `localhost:port` at the address live test servers bind: the first that `getaddrinfo` gives, as NIO
    /// takes it (another test's server may hold the same port number in the other address family).
    init(port: Int) throws {
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo("localhost", String(port), nil, &list) == 0, let info = list else { throw POSIXError(.EHOSTUNREACH) }
        defer { freeaddrinfo(list) }
        let candidate = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard candidate >= 0 else { throw POSIXError(.EIO) }
        guard connect(candidate, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            close(candidate)
            throw POSIXError(.ECONNREFUSED)
        }
        fd = candidate
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends bytes; false once the server has closed or reset the connection (or a send stays blocked for 1 s).
    @discardableResult
    func send(_ data: Data) async -> Bool {
        await withCheckedContinuation { continuation in queue.async { continuation.resume(returning: self.sendNow(data)) } }
    }

    @discardableResult
    func send(_ text: String) async -> Bool { await send(Data(text.utf8)) }

    /// Reads until the server closes the connection, `until` appears in what was read, or `seconds` pass.
    /// `closed` says whether the server closed (or reset) the connection.
    func read(for seconds: Double, until marker: String? = nil) async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: self.readNow(for: seconds, until: marker)) }
        }
    }

    private func sendNow(_ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }

    private func readNow(for seconds: Double, until marker: String?) -> (text: String, closed: Bool) {
        var received = Data()
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            if ready <= 0 { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received.append(contentsOf: buffer[0..<count])
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}
