import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Downloads repository snapshots from the Hugging Face Hub into the shared hub cache.
///
/// One `snapshot` call: asks the model-info endpoint which commit the revision points to and
/// which files it has (with sizes and LFS sha256), checks free disk space, fetches every blob the
/// cache lacks (resuming `.incomplete` files with HTTP Range, retrying transient failures with
/// backoff, verifying sha256 / git sha1), renames each verified blob into place, then links
/// `snapshots/<commit>/` and writes `refs/<revision>`. The snapshot links are made only once
/// every blob is present, so a snapshot folder written by PostLens is always complete.
public struct HubClient: Sendable {
    public let configuration: HubConfiguration

    public init(configuration: HubConfiguration = .fromEnvironment()) {
        self.configuration = configuration
    }

    public var cache: HubCache { HubCache(root: configuration.cacheDirectory) }

    /// Makes sure every file of `repo` at `revision` is in the cache and returns the folder
    /// `snapshots/<commit>` holding them.
    ///
    /// Offline (`HF_HUB_OFFLINE`), the cached snapshot is returned without any network access, or
    /// `HubError.offline` is thrown. When the Hub cannot be reached but a snapshot of the revision
    /// is cached, that snapshot is returned (with a note to `progress`).
    public func snapshot(
        repo: String,
        revision: String = "main",
        progress: (any DownloadProgressReporter)? = nil
    ) async throws -> URL {
        let id = try RepoID(repo)
        guard PathRules.isSafeRevision(revision) else { throw HubError.invalidRevision(revision) }
        if configuration.offline {
            if let folder = cache.cachedSnapshot(id, revision: revision) { return folder }
            throw HubError.offline(repo: id.description, revision: revision, cacheDirectory: cache.root.path)
        }
        let session = try HubSession(configuration: configuration)
        do {
            let folder = try await download(id, revision: revision, session: session, progress: progress)
            try? await session.shutdown()
            return folder
        } catch {
            try? await session.shutdown()
            throw error
        }
    }

    /// The model-info answer for `repo` at `revision` (commit and file list).
    public func repoInfo(repo: String, revision: String = "main") async throws -> RepoInfo {
        let id = try RepoID(repo)
        guard PathRules.isSafeRevision(revision) else { throw HubError.invalidRevision(revision) }
        let session = try HubSession(configuration: configuration)
        do {
            let info = try await session.repoInfo(id, revision: revision, progress: nil)
            try? await session.shutdown()
            return info
        } catch {
            try? await session.shutdown()
            throw error
        }
    }

    // MARK: - Snapshot

    /// A file of the snapshot and the name of its blob in the cache (nil when the server gave
    /// no hash: the name is then computed from the content, as a git blob sha1).
    struct PlannedFile {
        let file: RepoInfo.File
        var etag: String?
    }

    private func download(
        _ id: RepoID, revision: String, session: HubSession, progress: (any DownloadProgressReporter)?
    ) async throws -> URL {
        let info: RepoInfo
        // With a cached copy at hand, a Hub that cannot be reached is not worth waiting for
        // through several retries (AsyncHTTPClient already retries connecting until the connect
        // timeout): fall back to the cache at once, as huggingface_hub does.
        let cached = cache.cachedSnapshot(id, revision: revision)
        do {
            info = try await session.repoInfo(
                id, revision: revision, progress: progress, maxRetries: cached == nil ? nil : 0)
        } catch let error as HubError {
            if case .network(let message) = error, let folder = cached {
                progress?.note("Could not reach the Hub (\(message)); using the cached snapshot \(folder.path)")
                return folder
            }
            throw error
        }

        var planned: [PlannedFile] = []
        for file in info.files {
            guard PathRules.isSafeRelativePath(file.path) else {
                throw HubError.invalidResponse("unsafe file path '\(file.path)' in the file list")
            }
            var etag = (file.lfs?.sha256 ?? file.blobID)?.lowercased()
            if let tag = etag, !PathRules.isEtag(tag) { etag = nil }
            planned.append(PlannedFile(file: file, etag: etag))
        }

        // What is already here, what is left, and whether it fits on the disk.
        var total: Int64 = 0
        var completed: Int64 = 0
        var missing: Int64 = 0
        var pending: [Int] = []
        for (index, item) in planned.enumerated() {
            let size = item.file.expectedSize ?? 0
            total += size
            if let etag = item.etag, let present = FileSystem.fileSize(cache.blob(id, etag: etag)),
               item.file.expectedSize == nil || present == item.file.expectedSize {
                completed += size
                continue
            }
            pending.append(index)
            let partial = item.etag.flatMap { FileSystem.fileSize(cache.incompleteBlob(id, etag: $0)) } ?? 0
            let resumable = partial <= size ? partial : 0
            completed += resumable
            missing += size - resumable
        }
        try FileSystem.createDirectory(cache.blobsFolder(id))
        if missing > 0, let available = FileSystem.availableSpace(at: cache.blobsFolder(id)),
           available < missing + configuration.diskSpaceReserve {
            throw HubError.insufficientDiskSpace(
                needed: missing + configuration.diskSpaceReserve, available: available, path: cache.root.path)
        }

        if !pending.isEmpty {
            progress?.started(repo: id.description, fileCount: planned.count, totalBytes: total, completedBytes: completed)
        }
        let counter = ByteCounter(completed: completed)
        for index in pending {
            planned[index].etag = try await session.downloadBlob(
                id, commit: info.commit, file: planned[index].file, etag: planned[index].etag,
                cache: cache, counter: counter, progress: progress)
        }

        // Every blob is here: publish the snapshot, then the ref.
        let folder = cache.snapshotFolder(id, commit: info.commit)
        try FileSystem.createDirectory(folder)
        for item in planned {
            guard let etag = item.etag else { continue }
            try cache.linkSnapshotFile(id, commit: info.commit, path: item.file.path, etag: etag)
        }
        try cache.writeRef(id, revision: revision, commit: info.commit)
        if !pending.isEmpty { progress?.finished(completedBytes: counter.completed) }
        return folder
    }
}

/// Running total of bytes on disk for the progress display.
final class ByteCounter: @unchecked Sendable {
    // Only touched by the one task that runs a snapshot download.
    var completed: Int64
    init(completed: Int64) { self.completed = completed }
}

/// A failure worth retrying: lost connection, timeout, HTTP 429 or 5xx, short body.
struct TransientError: Error, CustomStringConvertible {
    let description: String
    var retryAfter: Duration?
}

/// One HTTP client (connection pool) for the length of a snapshot download.
final class HubSession: Sendable {
    let configuration: HubConfiguration
    let http: HTTPClient

    init(configuration: HubConfiguration) throws {
        self.configuration = configuration
        var config = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 10, allowCycles: false),
            timeout: .init(
                connect: .nanoseconds(Self.nanoseconds(configuration.connectTimeout)),
                read: .nanoseconds(Self.nanoseconds(configuration.readTimeout))
            ),
            proxy: ProxySettings.proxy(for: configuration.endpoint, environment: ProcessInfo.processInfo.environment),
            decompression: .disabled
        )
        config.httpVersion = .automatic
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    func shutdown() async throws { try await http.shutdown() }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    // MARK: Requests

    func request(_ url: String, method: HTTPMethod = .GET) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "postlens/1 (huggingface_hub compatible)")
        request.headers.add(name: "Accept-Encoding", value: "identity")
        if let token = configuration.token {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        return request
    }

    /// `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true`, with retries.
    func repoInfo(
        _ id: RepoID, revision: String, progress: (any DownloadProgressReporter)?, maxRetries: Int? = nil
    ) async throws -> RepoInfo {
        let url = "\(configuration.endpoint)/api/models/\(id)/revision/\(URLPath.encodeComponent(revision))?blobs=true"
        return try await withRetries(what: "the file list of \(id)", progress: progress, maxRetries: maxRetries) { _ in
            let response = try await self.execute(self.request(url))
            try self.checkStatus(response, repo: id, revision: revision, file: nil, url: url)
            let body = try await response.body.collect(upTo: 64 * 1024 * 1024)
            let info: RepoInfo
            do {
                info = try JSONDecoder().decode(RepoInfo.self, from: Data(body.readableBytesView))
            } catch {
                throw HubError.invalidResponse("the model info from \(url) could not be read (\(error))")
            }
            guard PathRules.isCommitHash(info.commit) else {
                throw HubError.invalidResponse("the model info from \(url) has no valid commit hash ('sha')")
            }
            return info
        }
    }

    func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        do {
            return try await http.execute(request, timeout: .nanoseconds(Self.nanoseconds(configuration.readTimeout)))
        } catch let error as HTTPClientError where error == .cancelled {
            throw CancellationError()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TransientError(description: Self.describe(error))
        }
    }

    /// Maps an HTTP status to the error a person can act on (or to a retry).
    func checkStatus(_ response: HTTPClientResponse, repo: RepoID, revision: String, file: String?, url: String) throws {
        let status = Int(response.status.code)
        if (200..<300).contains(status) { return }
        let code = response.headers.first(name: "X-Error-Code")
        let message = response.headers.first(name: "X-Error-Message")
        switch status {
        case 401, 403:
            if code == "RepoNotFound" && configuration.token != nil {
                throw HubError.notFound(repo: repo.description, revision: revision, missing: .repository)
            }
            throw HubError.unauthorized(repo: repo.description, status: status, message: message)
        case 404:
            let missing: HubError.Missing
            switch code {
            case "RepoNotFound": missing = .repository
            case "RevisionNotFound": missing = .revision
            case "EntryNotFound": missing = file.map { .file($0) } ?? .repositoryOrRevision
            default: missing = file.map { .file($0) } ?? .repositoryOrRevision
            }
            throw HubError.notFound(repo: repo.description, revision: revision, missing: missing)
        case 408, 429, 500...599:
            var retryAfter: Duration?
            if let value = response.headers.first(name: "Retry-After"), let seconds = Int(value), seconds >= 0 {
                retryAfter = .seconds(min(seconds, 120))
            }
            throw TransientError(description: "HTTP \(status) from \(url)", retryAfter: retryAfter)
        default:
            throw HubError.http(status: status, url: url, message: message)
        }
    }

    /// Runs `body` until it succeeds, retrying transient failures with exponential backoff.
    /// `body` receives the attempt number; an attempt that made progress (the closure returns
    /// normally or reports progress via `madeProgress`) resets the count, so a long download over
    /// a flaky link keeps going as long as bytes keep arriving.
    func withRetries<T>(
        what: String,
        progress: (any DownloadProgressReporter)?,
        maxRetries: Int? = nil,
        madeProgress: () -> Bool = { false },
        _ body: (Int) async throws -> T
    ) async throws -> T {
        var failures = 0
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await body(attempt)
            } catch let error as TransientError {
                failures = madeProgress() ? 1 : failures + 1
                let allowed = maxRetries ?? configuration.maxRetries
                guard failures <= allowed else {
                    throw HubError.network("\(error.description) (while fetching \(what), after \(failures) tries)")
                }
                let delay = error.retryAfter ?? backoff(failures)
                progress?.note("\(error.description); retrying in \(String(format: "%.1f", durationSeconds(delay)))s (\(failures)/\(allowed))")
                try await Task.sleep(for: delay)
            }
        }
    }

    /// initialBackoff × 2^(n-1), capped at maxBackoff, with ±20 % jitter so that many clients
    /// behind one proxy do not retry in lockstep.
    func backoff(_ failures: Int) -> Duration {
        let base = durationSeconds(configuration.initialBackoff) * pow(2, Double(max(0, failures - 1)))
        let capped = min(base, durationSeconds(configuration.maxBackoff))
        let jittered = capped * Double.random(in: 0.8...1.2)
        return .nanoseconds(Int64(jittered * 1e9))
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connection timed out"
            case .readTimeout: return "no data received for too long (read timeout)"
            case .remoteConnectionClosed: return "the server closed the connection"
            case .deadlineExceeded: return "the request timed out"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

/// Percent-encoding as the Hub's URLs need it.
enum URLPath {
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// A single path component: `/` is encoded too (a revision like `refs/pr/1`).
    static func encodeComponent(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
    }

    /// A file path inside the repository: each component encoded, `/` kept.
    static func encodePath(_ s: String) -> String {
        s.split(separator: "/", omittingEmptySubsequences: false).map { encodeComponent(String($0)) }.joined(separator: "/")
    }
}

/// HTTP(S)_PROXY / NO_PROXY support, as curl and Python's requests read them: AsyncHTTPClient
/// does not look at the environment itself.
enum ProxySettings {
    static func proxy(for endpoint: String, environment env: [String: String]) -> HTTPClient.Configuration.Proxy? {
        guard let endpointURL = URL(string: endpoint), let host = endpointURL.host?.lowercased() else { return nil }
        if ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host) { return nil }
        let noProxy = (env["NO_PROXY"] ?? env["no_proxy"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        for entry in noProxy where !entry.isEmpty {
            if entry == "*" { return nil }
            let suffix = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
            if host == suffix || host.hasSuffix("." + suffix) { return nil }
        }
        let names = endpointURL.scheme?.lowercased() == "https" ? ["HTTPS_PROXY", "https_proxy"] : ["HTTP_PROXY", "http_proxy"]
        guard let raw = names.compactMap({ env[$0] }).first(where: { !$0.isEmpty }) else { return nil }
        let withScheme = raw.contains("://") ? raw : "http://" + raw
        guard let proxyURL = URL(string: withScheme), let proxyHost = proxyURL.host else { return nil }
        let port = proxyURL.port ?? 8080
        if let user = proxyURL.user {
            let password = proxyURL.password ?? ""
            return .server(host: proxyHost, port: port, authorization: .basic(username: user.removingPercentEncoding ?? user,
                                                                               password: password.removingPercentEncoding ?? password))
        }
        return .server(host: proxyHost, port: port)
    }
}
