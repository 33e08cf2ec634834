import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// Fetches `http(s)` image URLs, only when the server was started with `--allow-remote-images`.
///
/// A server that fetches URLs for its clients can be turned against the network it sits in (SSRF), so:
/// every host is resolved first and refused when any of its addresses is loopback, private, link-local,
/// carrier-grade NAT, multicast or otherwise special; redirects are followed by hand (at most
/// `maxRedirects`), re-checking each hop; the body is capped at `maxBytes` while it streams in; the whole
/// fetch has a time limit. (A DNS answer could still change between the check and the connection; the
/// window is a few milliseconds, and a resolver you control closes it.)
struct RemoteImageFetcher: Sendable {
    var maxBytes: Int
    var timeout: TimeAmount = .seconds(10)
    var maxRedirects = 3
    /// Tests only: lets a loopback test server stand in for the internet.
    var allowPrivateAddresses = false

    func fetch(_ url: String, param: String) async throws -> Data {
        var current = url
        for _ in 0...maxRedirects {
            guard let parsed = URL(string: current), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = parsed.host, !host.isEmpty else {
                throw ServerError.badImageData("malformed image URL", param: param)
            }
            try await checkHost(host, param: param)
            var request = HTTPClientRequest(url: current)
            request.headers.add(name: "User-Agent", value: "PostLens image fetcher")
            request.headers.add(name: "Accept", value: "image/*")
            let response: HTTPClientResponse
            do {
                response = try await Self.client.execute(request, timeout: timeout)
            } catch {
                throw ServerError.badImageData("fetching the image failed: \(error)", param: param)
            }
            if (300..<400).contains(Int(response.status.code)), let location = response.headers.first(name: "Location") {
                guard let next = URL(string: location, relativeTo: parsed)?.absoluteString else {
                    throw ServerError.badImageData("the image URL redirects to a malformed location", param: param)
                }
                current = next
                continue
            }
            guard response.status == .ok else {
                throw ServerError.badImageData("fetching the image returned HTTP \(response.status.code)", param: param)
            }
            if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBytes {
                throw ServerError.imageFileTooLarge(bytes: length, limit: maxBytes, param: param)
            }
            do {
                return Data(buffer: try await response.body.collect(upTo: maxBytes))
            } catch is NIOTooManyBytesError {
                throw ServerError.imageFileTooLarge(bytes: maxBytes + 1, limit: maxBytes, param: param)
            } catch {
                throw ServerError.badImageData("reading the image failed: \(error)", param: param)
            }
        }
        throw ServerError.badImageData("the image URL redirects more than \(maxRedirects) times", param: param)
    }

    /// One client for the process, with automatic redirects off: each hop is checked above.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: .seconds(10))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Refuses hosts that resolve to non-public addresses.
    private func checkHost(_ host: String, param: String) async throws {
        let addresses = try await Self.resolve(host)
        guard !addresses.isEmpty else { throw ServerError.badImageData("the image host '\(host)' does not resolve", param: param) }
        if allowPrivateAddresses { return }
        for address in addresses where !Self.isPublic(address) {
            throw ServerError.badImageData("the image host '\(host)' resolves to a private, loopback or link-local address; such URLs are refused", param: param)
        }
    }

    /// All IPv4 and IPv6 addresses of `host`, as raw bytes (getaddrinfo blocks, so it runs off the cooperative pool).
    static func resolve(_ host: String) async throws -> [[UInt8]] {
        let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(name, nil, &hints, &result) == 0 else { continuation.resume(returning: []); return }
                defer { freeaddrinfo(result) }
                var out: [[UInt8]] = []
                var node = result
                while let info = node {
                    if info.pointee.ai_family == AF_INET, let sa = info.pointee.ai_addr {
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                            out.append(withUnsafeBytes(of: v4.pointee.sin_addr) { Array($0) })
                        }
                    } else if info.pointee.ai_family == AF_INET6, let sa = info.pointee.ai_addr {
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                            out.append(withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) })
                        }
                    }
                    node = info.pointee.ai_next
                }
                continuation.resume(returning: out)
            }
        }
    }

    /// Whether an address (4 or 16 bytes, network order) is an ordinary public unicast address.
    static func isPublic(_ a: [UInt8]) -> Bool {
        if a.count == 16 {
            if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xFF && a[11] == 0xFF { return isPublic(Array(a[12..<16])) }  // IPv4-mapped
            if a.allSatisfy({ $0 == 0 }) || (a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1) { return false }  // :: and ::1
            if a[0] & 0xFE == 0xFC { return false }                 // fc00::/7 unique local
            if a[0] == 0xFE && a[1] & 0xC0 == 0x80 { return false } // fe80::/10 link-local
            if a[0] == 0xFF { return false }                        // multicast
            if a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0D && a[3] == 0xB8 { return false }  // documentation
            return true
        }
        guard a.count == 4 else { return false }
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return false
        case (100, 64...127): return false                  // carrier-grade NAT
        case (169, 254): return false                       // link-local (cloud metadata lives here)
        case (172, 16...31): return false
        case (192, 168): return false
        case (192, 0) where a[2] == 0 || a[2] == 2: return false
        case (198, 18...19): return false                   // benchmarking
        case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: return false
        case (224...255, _): return false                   // multicast, reserved, broadcast
        default: return true
        }
    }
}
