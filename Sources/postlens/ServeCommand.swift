import ArgumentParser
import Foundation
import Hub
import Qwen3VL
import Server
import Synchronization

/// `postlens serve`: the OpenAI-compatible HTTP server (docs/api.md).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over an OpenAI-compatible HTTP API (POST /v1/chat/completions).",
        discussion: """
        The server listens at once. While a repo id is downloaded (first use) and the weights are read, GET /health \
        answers 503 with status 'loading' and how far it has come (the page shows it too); then 'ready'. See docs/api.md.
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("model-id"), help: "The model id clients send and /v1/models lists (default: the repo id, or the folder's name).")
    var modelID: String?

    @Option(name: .customLong("offer"), help: ArgumentHelp("Also offer this model (folder, repo id or alias; repeatable): /v1/models lists it and the operator switches to it with the web page's model picker or POST /v1/models/load. One model is loaded at a time; --model is the first.", valueName: "model"))
    var offered: [String] = []

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8080

    @Option(name: .customLong("api-key"), help: "Accept this bearer key (repeat for several; default: no authentication). Also POSTLENS_API_KEY.")
    var apiKeys: [String] = []

    @Option(name: .customLong("allowed-host"), help: "Also answer the web page and /api under this host name (repeatable; '*' for any). Loopback names and --host are always allowed.")
    var allowedHosts: [String] = []

    @Option(name: .customLong("cors-origin"), help: "Let pages from this origin (scheme://host:port) call the API cross-site, with CORS headers (repeatable). Default: CORS off.")
    var corsOrigins: [String] = []

    @Option(name: .customLong("client-timeout"), help: "Seconds a client may take to send a request head or body, or to read each part of a stream, before its connection is closed.")
    var clientTimeout = 60.0

    @Option(name: .customLong("max-queue"), help: "Most chat requests in flight (running + waiting); more get 429.")
    var maxQueue = 8

    @Option(name: .customLong("allow-image-dir"), help: "Allow image_url to name local files under this folder.")
    var allowImageDir: String?

    @Flag(name: .customLong("allow-remote-images"), help: "Fetch http(s) image URLs (size-capped, 10 s timeout, ≤ 3 redirects; private, loopback and link-local hosts refused).")
    var allowRemoteImages = false

    @Option(name: .customLong("max-images"), help: "Most images in one request.")
    var maxImages = 16

    @Option(name: .customLong("kv-cache-budget-mb"), help: "KV-cache memory all requests in flight may reserve together, in MiB; a request that does not fit gets 503 with Retry-After.")
    var kvCacheBudgetMB = 8192

    @Option(name: .customLong("context-limit"), help: "Longest prompt + answer, in tokens (default: the model's, at most 32768).")
    var contextLimit: Int?

    @Option(name: .customLong("db"), help: "SQLite file for the web page's conversations (default: $POSTLENS_HISTORY_DB, else ~/.local/share/postlens/history.sqlite).")
    var database: String?

    @Flag(name: .customLong("no-history"), help: "Keep conversations in memory only.")
    var noHistory = false

    /// `--database postgres://…`: conversations and batch jobs shared with other servers and workers.
    @OptionGroup var shared: DatabaseOptions

    @Option(name: .customLong("batch-concurrency"), help: "Batch items this server runs at once beside chat (0: leave them to `postlens worker`s).")
    var batchConcurrency = 1

    /// Where conversations are stored, or nil for memory only.
    var historyPath: String? {
        if noHistory { return nil }
        if let database { return (database as NSString).expandingTildeInPath }
        if let path = ProcessInfo.processInfo.environment["POSTLENS_HISTORY_DB"], !path.isEmpty { return path }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share/postlens/history.sqlite").path
    }

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be 0...65535") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard maxImages >= 0 else { throw ValidationError("--max-images must be 0 or more") }
        guard kvCacheBudgetMB >= 1 else { throw ValidationError("--kv-cache-budget-mb must be at least 1") }
        guard clientTimeout >= 0.1, clientTimeout <= 86_400 else { throw ValidationError("--client-timeout must be between 0.1 and 86400 seconds") }
        for origin in corsOrigins where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || origin.dropFirst(8).contains("/") {
            throw ValidationError("--cors-origin \(origin) must be an origin such as https://app.example.com (scheme, host, optional port; no path)")
        }
        // An empty key would make authentication accept `Authorization: Bearer ` (no key at all).
        if let empty = apiKeys.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--api-key number \(empty + 1) is empty; give a non-empty key, or leave --api-key out to run without authentication")
        }
        guard (0...64).contains(batchConcurrency) else { throw ValidationError("--batch-concurrency must be 0...64") }
        if shared.url != nil && (database != nil || noHistory) {
            throw ValidationError("--database (or POSTLENS_DATABASE_URL) keeps conversations in that database; leave out --db and --no-history, or unset it")
        }
        guard ServerRunner.isValidLogLevel(logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        modelOptions.runtime.applyThreads()
        // Each model is looked for on disk now (a folder, or the Hugging Face cache), so a typo fails before the server
        // starts; a repo id that is not there yet is downloaded while the server listens.
        var models: [ModelSource] = []
        for (index, argument) in ([modelOptions.model] + offered).enumerated() {
            do {
                models.append(try await Self.source(argument, id: index == 0 ? modelID : nil))
            } catch {
                printError("error: \(index == 0 ? "" : "--offer: ")\(error)")
                throw ExitCode.failure
            }
        }
        var configuration = ServerConfiguration(modelID: models[0].id)
        configuration.host = host
        configuration.port = port
        configuration.allowRemoteImages = allowRemoteImages
        configuration.apiKeys = apiKeys
        if let key = ProcessInfo.processInfo.environment["POSTLENS_API_KEY"], !key.trimmingCharacters(in: .whitespaces).isEmpty {
            configuration.apiKeys.append(key)
        }
        configuration.maxQueue = maxQueue
        configuration.maxImageTokens = modelOptions.runtime.maxImageTokens
        configuration.maxImagesPerRequest = maxImages
        configuration.allowedHosts = allowedHosts
        configuration.corsOrigins = corsOrigins
        configuration.clientTimeout = .milliseconds(Int64(clientTimeout * 1000))
        configuration.kvCacheBudgetBytes = kvCacheBudgetMB << 20
        if let allowImageDir {
            var isDirectory: ObjCBool = false
            let url = URL(fileURLWithPath: (allowImageDir as NSString).expandingTildeInPath).standardizedFileURL
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                printError("error: --allow-image-dir \(url.path) is not a folder")
                throw ExitCode.failure
            }
            configuration.allowedImageDirectory = url
        }

        configuration.batchConcurrency = batchConcurrency
        var opened: OpenedDatabase?
        if let url = shared.url {
            do {
                opened = try await OpenedDatabase.open(url, maximumConnections: 16, logger: commandLogger("postlens.database", level: .info))
            } catch {
                printError("\(error)".hasPrefix("error:") ? "\(error)" : "error: \(error)")
                throw ExitCode.failure
            }
        }
        defer { opened?.close() }
        try await ServerRunner.run(configuration: configuration, models: models, contextLimit: contextLimit,
                                   format: modelOptions.runtime.format, historyDatabase: historyPath, logLevel: logLevel,
                                   database: opened.map { SharedDatabase(conversations: $0.conversations, jobs: $0.jobs, isShared: $0.isShared,
                                                                         description: $0.description) })
    }

    /// The id a model is served under: a repo id names it better than its snapshot folder (a commit hash); an alias
    /// (`8b-thinking`) becomes its repo id; a folder is named by its last component.
    static func defaultID(_ argument: String, folder: URL) -> String {
        if FileManager.default.fileExists(atPath: (argument as NSString).expandingTildeInPath) { return folder.lastPathComponent }
        return Qwen3VLFamily.member(named: argument)?.repo ?? argument
    }

    /// A `--model`/`--offer` argument as the server takes it: its folder when it is on disk, else a download that
    /// runs while the server listens (its progress on `/health` while it is the served model, and on the terminal).
    static func source(_ argument: String, id: String?) async throws -> ModelSource {
        do {
            let folder = try await resolveModelFolder(argument, download: false)
            return ModelSource(id: id ?? defaultID(argument, folder: folder), folder: folder)
        } catch HubError.notCached {
            let id = id ?? defaultID(argument, folder: URL(fileURLWithPath: argument))
            return ModelSource(id: id) { host, served in
                try await resolveModelFolder(argument, progress: served ? HostDownloadProgress(host: host) : TerminalDownloadProgress())
            }
        }
    }
}

/// A download while `serve` is already listening: on `/health` (and so on the page) and on the terminal.
final class HostDownloadProgress: DownloadProgressReporter {
    let host: ModelHost
    let terminal = TerminalDownloadProgress()
    private let total = Mutex<Int64>(0)

    init(host: ModelHost) { self.host = host }

    func started(repo: String, fileCount: Int, totalBytes: Int64, completedBytes: Int64) {
        total.withLock { $0 = totalBytes }
        host.downloading(completedBytes: completedBytes, totalBytes: totalBytes, file: nil)
        terminal.started(repo: repo, fileCount: fileCount, totalBytes: totalBytes, completedBytes: completedBytes)
    }

    func progressed(completedBytes: Int64, currentFile: String) {
        host.downloading(completedBytes: completedBytes, totalBytes: total.withLock { $0 }, file: currentFile)
        terminal.progressed(completedBytes: completedBytes, currentFile: currentFile)
    }

    func note(_ message: String) { terminal.note(message) }

    func finished(completedBytes: Int64) {
        host.downloading(completedBytes: completedBytes, totalBytes: total.withLock { $0 }, file: nil)
        terminal.finished(completedBytes: completedBytes)
    }
}
