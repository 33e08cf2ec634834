import Foundation
import Hummingbird
import Store

/// Options for the page and its JSON API.
public struct WebUIOptions: Sendable {
    /// Largest request body the `/api` routes read (imports carry images as data URLs).
    public var maxBodyBytes: Int
    /// Where the page's files are; nil finds the `Assets` resource shipped beside the binary.
    public var assetsDirectory: URL?

    public init(maxBodyBytes: Int = 256 << 20, assetsDirectory: URL? = nil) {
        self.maxBodyBytes = maxBodyBytes
        self.assetsDirectory = assetsDirectory
    }
}

/// Mounts the web UI on a router: `GET /` (the page), `GET /assets/{file}` (its CSS and ES modules), and the
/// JSON API under `/api` (docs/api-conversations.md). Call it once from `buildApplication`:
///
/// ```swift
/// addWebRoutes(to: router, store: try SQLiteConversationStore(path: historyPath))
/// ```
public func addWebRoutes<Context: RequestContext>(to router: Router<Context>, store: some ConversationStore,
                                                  options: WebUIOptions = WebUIOptions()) {
    let assets = WebAssets.load(from: options.assetsDirectory)
    router.get("/") { request, _ in assets.response(for: "index.html", request: request) }
    router.get("/index.html") { request, _ in assets.response(for: "index.html", request: request) }
    router.get("/assets/{file}") { request, context in
        assets.response(for: context.parameters.get("file") ?? "", request: request)
    }
    router.addRoutes(ConversationAPI<Context>(store: store, maxBodyBytes: options.maxBodyBytes).routes, atPath: "/api")
}

/// The page's files, read once into memory (they are small: see docs/web.md).
struct WebAssets: Sendable {
    struct File: Sendable {
        let bytes: [UInt8]
        let contentType: String
        let etag: String
    }

    let files: [String: File]
    let source: String

    static func load(from directory: URL?) -> WebAssets {
        guard let directory = directory ?? locateAssets() else { return WebAssets(files: [:], source: "none") }
        var files: [String: File] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where !name.hasPrefix(".") {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else { continue }
            files[name] = File(bytes: [UInt8](data), contentType: contentType(for: name), etag: "\"\(fnv1a(data))\"")
        }
        return WebAssets(files: files, source: directory.path)
    }

    /// `POSTLENS_WEB_ASSETS`, then the SwiftPM resource folder beside the executable (what an install copies),
    /// then this source tree (tests and `swift run` from a checkout). Never Bundle.module, which traps when missing.
    static func locateAssets() -> URL? {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["POSTLENS_WEB_ASSETS"], !override.isEmpty {
            candidates.append(URL(fileURLWithPath: override))
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for base in [Bundle.main.bundleURL, executable] {
            candidates.append(base.appendingPathComponent("PostLens_WebUI.resources/Assets"))
            candidates.append(base.appendingPathComponent("PostLens_WebUI.resources"))
        }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Assets"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("index.html").path) }
    }

    func response(for name: String, request: Request) -> Response {
        guard let file = files[name] else {
            let message = files.isEmpty
                ? "PostLens web UI assets not found (looked beside the binary for PostLens_WebUI.resources; set POSTLENS_WEB_ASSETS)"
                : "not found"
            return Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: message)))
        }
        var headers: HTTPFields = [.contentType: file.contentType, .eTag: file.etag, .cacheControl: "no-cache",
                                   .init("X-Content-Type-Options")!: "nosniff"]
        if name == "index.html" {
            // Model output is rendered as DOM text nodes; this policy is the second line of defence.
            headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
            headers[.init("Referrer-Policy")!] = "no-referrer"
        }
        if request.headers[.ifNoneMatch] == file.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    static func contentType(for name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "html": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "ico": return "image/x-icon"
        default: return "application/octet-stream"
        }
    }

    static func fnv1a(_ data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }
}
