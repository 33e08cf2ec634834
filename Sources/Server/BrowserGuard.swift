import Foundation
import HTTPTypes
import Hummingbird

/// What a web page elsewhere must not be able to do with a server a browser can reach (OWASP: DNS rebinding, CSRF):
///
/// - **Host.** The page and `/api` (where the conversation history lives) answer only requests whose `Host` is an
///   allowed name: loopback (`localhost`, `127.0.0.1`, `[::1]`), the address given to `--host` unless it is a wildcard,
///   and each `--allowed-host` (`*` turns the check off). A DNS-rebinding page reaches the server under its own name
///   and is refused.
/// - **Origin.** A request that carries `Origin` (browsers send it on cross-site requests and on every POST) to the page
///   or `/api`, or with a state-changing method anywhere, must come from the server's own origin (an allowed host) or a
///   `--cors-origin`. Clients that are not browsers send no `Origin` and are unaffected.
/// - **Content type.** A state-changing request with a body must say it is JSON (`/v1/batches` also takes JSON lines):
///   the content types a cross-site form or `fetch` can send without a CORS preflight (`text/plain`, form encodings)
///   are refused with 415.
/// - **CORS** is off unless `--cors-origin` names origins: only those get `Access-Control-Allow-*` headers and preflights.
///
/// Refusals are answered here in OpenAI's error shape (403, 415), before authentication.
struct BrowserGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: BrowserPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let origin = request.headers[.origin]
        let allowedCORS = origin.map { policy.corsOrigins.contains($0.lowercased()) } ?? false
        if request.method == .options, allowedCORS, request.headers[.accessControlRequestMethod] != nil {
            return preflight(origin: origin!)
        }
        // HTTP/1's Host header arrives as the request's authority.
        let host = request.head.authority
        if let refusal = policy.refusal(method: request.method, path: request.uri.path, host: host, origin: origin,
                                        contentType: request.headers[.contentType], hasBody: Self.hasBody(request)) {
            context.logger.info("request refused by the browser guard", metadata: ["status": "\(refusal.status.code)", "reason": "\(refusal.message)"])
            return try refusal.response(from: request, context: context)
        }
        var response = try await next(request, context)
        if allowedCORS, let origin {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.vary] = "Origin"
        }
        return response
    }

    private func preflight(origin: String) -> Response {
        Response(status: .noContent, headers: [
            .accessControlAllowOrigin: origin,
            .accessControlAllowMethods: "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            .accessControlAllowHeaders: "Authorization, Content-Type, Accept",
            .accessControlMaxAge: "600",
            .vary: "Origin",
        ])
    }

    static func hasBody(_ request: Request) -> Bool {
        if let length = request.headers[.contentLength].flatMap(Int.init) { return length > 0 }
        return request.headers[.transferEncoding] != nil
    }
}

/// The allowed names and origins, and the rules of `BrowserGuardMiddleware` as a pure function (tested directly).
struct BrowserPolicy: Sendable {
    /// Lower-cased host names (no port); contains "*" when the Host check is off.
    let allowedHosts: Set<String>
    /// Lower-cased origins (`scheme://host[:port]`) that may use the server cross-site.
    let corsOrigins: Set<String>

    init(configuration: ServerConfiguration) {
        var hosts: Set<String> = ["localhost", "127.0.0.1", "::1"]
        let bound = Self.hostName(configuration.host)
        if !["0.0.0.0", "::", ""].contains(bound) { hosts.insert(bound) }
        for host in configuration.allowedHosts { hosts.insert(host == "*" ? "*" : Self.hostName(host)) }
        allowedHosts = hosts
        corsOrigins = Set(configuration.corsOrigins.map { $0.lowercased().trimmingSuffix("/") })
    }

    /// `Example.COM:8080` → `example.com`; `[::1]:8080` → `::1`.
    static func hostName(_ value: String) -> String {
        let lower = value.lowercased().trimmingCharacters(in: .whitespaces)
        if lower.hasPrefix("[") {
            guard let end = lower.firstIndex(of: "]") else { return lower }
            return String(lower[lower.index(after: lower.startIndex)..<end])
        }
        if lower.filter({ $0 == ":" }).count == 1, let colon = lower.firstIndex(of: ":") { return String(lower[..<colon]) }
        return lower
    }

    func hostAllowed(_ host: String) -> Bool {
        allowedHosts.contains("*") || allowedHosts.contains(Self.hostName(host))
    }

    /// An origin the server accepts: a `--cors-origin`, or an http(s) origin on an allowed host (the page itself).
    func originAllowed(_ origin: String) -> Bool {
        let lower = origin.lowercased()
        if corsOrigins.contains(lower) { return true }
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let authority = lower.dropFirst(scheme.count)
            guard !authority.contains("/"), !authority.contains("@") else { return false }
            return hostAllowed(String(authority))
        }
        return false  // "null", file:, other schemes
    }

    /// The answer that refuses this request, or nil when it may go on.
    func refusal(method: HTTPRequest.Method, path: String, host: String?, origin: String?, contentType: String?,
                 hasBody: Bool) -> APIError? {
        let browserFacing = path == "/" || path == "/index.html" || path.hasPrefix("/assets/") || path.hasPrefix("/api/")
        if browserFacing, let host, !hostAllowed(host) {
            return APIError(status: .forbidden,
                            message: "the Host '\(host)' is not one this server answers the web page and /api for; start it with --allowed-host \(Self.hostName(host)) to allow it",
                            code: "host_not_allowed")
        }
        let stateChanging = ![.get, .head, .options].contains(method)
        if let origin, browserFacing || stateChanging, !originAllowed(origin) {
            return APIError(status: .forbidden,
                            message: "requests from the web origin '\(origin)' are refused; start the server with --cors-origin \(origin) to allow it",
                            code: "origin_not_allowed")
        }
        if stateChanging, hasBody, !Self.acceptable(contentType, path: path) {
            let expected = path.hasPrefix("/v1/batches") ? "application/json or application/x-ndjson" : "application/json"
            return APIError(status: .unsupportedMediaType,
                            message: "the body must be sent as \(expected) (Content-Type: \(contentType ?? "none") is refused)",
                            code: "unsupported_media_type")
        }
        return nil
    }

    static func acceptable(_ contentType: String?, path: String) -> Bool {
        guard let contentType else { return false }
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json")) { return true }
        return path.hasPrefix("/v1/batches") && ["application/x-ndjson", "application/jsonl", "application/jsonlines"].contains(media)
    }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
