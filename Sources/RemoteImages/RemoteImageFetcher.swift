import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// Fetches `http(s)` image URLs for the server (`--allow-remote-images`) and for `postlens analyze`, guarded against
/// server-side request forgery:
///
/// - the host is resolved first and refused when any of its addresses is not public (`AddressPolicy`);
/// - the connection goes to the address that was checked (AsyncHTTPClient's DNS override; TLS still verifies the
///   host name), so a DNS answer that changes between the check and the connection (DNS rebinding) is never used;
/// - redirects are followed by hand, at most `maxRedirects`, each hop checked again;
/// - the body is capped at `maxBytes` while it streams in, and the whole fetch has a time limit.
public struct RemoteImageFetcher: Sendable {
    public var maxBytes: Int
    public var timeout: TimeAmount = .seconds(10)
    public var maxRedirects = 3
    /// Trusted input or tests only: lets loopback and private hosts through.
    public var allowPrivateAddresses = false

    public init(maxBytes: Int, allowPrivateAddresses: Bool = false) {
        self.maxBytes = maxBytes
        self.allowPrivateAddresses = allowPrivateAddresses
    }

    public func fetch(_ url: String) async throws(RemoteImageError) -> Data {
        var current = url
        for _ in 0...maxRedirects {
            guard let parsed = URL(string: current), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = parsed.host, !host.isEmpty else {
                throw .malformedURL(current)
            }
            let address = try await checkedAddress(of: host)
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5), read: timeout)
            // Connect to the checked address, not to whatever the name resolves to next.
            configuration.dnsOverride = [Self.bareHost(host): address]
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let hop: Result<Hop, RemoteImageError>
            do { hop = .success(try await fetchOnce(current, base: parsed, client: client)) } catch { hop = .failure(error) }
            try? await client.shutdown()
            switch try hop.get() {
            case .body(let data): return data
            case .redirect(let next): current = next
            }
        }
        throw .tooManyRedirects(maxRedirects)
    }

    private enum Hop {
        case body(Data)
        case redirect(String)
    }

    private func fetchOnce(_ url: String, base: URL, client: HTTPClient) async throws(RemoteImageError) -> Hop {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "PostLens image fetcher")
        request.headers.add(name: "Accept", value: "image/*")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw .failed("fetching the image failed: \(error)")
        }
        if (300..<400).contains(Int(response.status.code)), let location = response.headers.first(name: "Location") {
            guard let next = URL(string: location, relativeTo: base)?.absoluteString else { throw .malformedURL(location) }
            return .redirect(next)
        }
        guard response.status == .ok else { throw .httpStatus(Int(response.status.code)) }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBytes {
            throw .tooLarge(bytes: length, limit: maxBytes)
        }
        do {
            return .body(Data((try await response.body.collect(upTo: maxBytes)).readableBytesView))
        } catch is NIOTooManyBytesError {
            throw .tooLarge(bytes: maxBytes + 1, limit: maxBytes)
        } catch {
            throw .failed("reading the image failed: \(error)")
        }
    }

    /// The address to connect to: every address of `host` must be public (unless allowed); the first IPv4 one is used
    /// (else the first), since an image host is more often reachable over IPv4.
    public func checkedAddress(of host: String) async throws(RemoteImageError) -> String {
        let addresses = await Self.resolve(Self.bareHost(host))
        guard let first = addresses.first(where: { $0.count == 4 }) ?? addresses.first else { throw .unresolvable(host) }
        if !allowPrivateAddresses, addresses.contains(where: { !AddressPolicy.isPublic($0) }) { throw .privateAddress(host) }
        return Self.format(first)
    }

    static func bareHost(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// All IPv4 and IPv6 addresses of `host`, as raw bytes (getaddrinfo blocks, so it runs off the cooperative pool).
    public static func resolve(_ host: String) async -> [[UInt8]] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(host, nil, &hints, &result) == 0 else { continuation.resume(returning: []); return }
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

    /// The textual form of a 4- or 16-byte address.
    static func format(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = address.count == 4 ? AF_INET : AF_INET6
        _ = address.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(cString: buffer)
    }
}

/// Why a remote image could not be fetched.
public enum RemoteImageError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedURL(String)
    case unresolvable(String)
    case privateAddress(String)
    case tooManyRedirects(Int)
    case httpStatus(Int)
    case tooLarge(bytes: Int, limit: Int)
    case failed(String)

    public var description: String {
        switch self {
        case .malformedURL(let url): "malformed image URL '\(url.prefix(200))'"
        case .unresolvable(let host): "the image host '\(host)' does not resolve"
        case .privateAddress(let host):
            "the image host '\(host)' resolves to a private, loopback or link-local (or otherwise non-public) address; such URLs are refused"
        case .tooManyRedirects(let limit): "the image URL redirects more than \(limit) times"
        case .httpStatus(let code): "fetching the image returned HTTP \(code)"
        case .tooLarge(let bytes, let limit): "the image has \(bytes) bytes, more than the limit of \(limit)"
        case .failed(let why): why
        }
    }
}
