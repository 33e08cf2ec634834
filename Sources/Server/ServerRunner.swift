import Engine
import Foundation
import Hummingbird
import Kernels
import Logging
import Store

/// Runs `postlens serve`: listens at once, loads the model on a plain thread, serves until stopped.
public enum ServerRunner {
    public static func isValidLogLevel(_ name: String) -> Bool { Logger.Level(rawValue: name) != nil }

    public static func run(configuration: ServerConfiguration, modelFolder: URL, contextLimit: Int?, format: WeightFormat = .q8,
                           historyDatabase: String?, logLevel: String) async throws {
        var logger = Logger(label: "postlens.server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let host = ModelHost(modelID: configuration.modelID)
        // Reading and converting weights is seconds of blocking work: keep it off Swift's cooperative pool,
        // which also runs the HTTP server (so /health answers "loading" meanwhile).
        let loadLogger = logger
        Thread.detachNewThread {
            let start = Date()
            do {
                let engine = try InferenceEngine(directory: modelFolder, contextLimit: contextLimit, format: format)
                host.setReady(engine)
                loadLogger.info("model ready", metadata: [
                    "model": "\(configuration.modelID)", "load_s": "\(String(format: "%.1f", Date().timeIntervalSince(start)))",
                ])
            } catch {
                host.setFailed("\(error)")
                loadLogger.critical("model failed to load", metadata: ["error": "\(error)"])
                FileHandle.standardError.write(Data("error: the model in \(modelFolder.path) failed to load: \(error)\n".utf8))
                exit(1)
            }
        }
        logger.info("listening", metadata: [
            "address": "http://\(configuration.host):\(configuration.port)", "model": "\(configuration.modelID)",
            "auth": "\(configuration.apiKeys.isEmpty ? "off" : "bearer")", "max_queue": "\(configuration.maxQueue)",
        ])
        // Conversations of the web page: a SQLite file (WAL), or memory only with `--no-history`.
        let store: any ConversationStore = try historyDatabase.map { try SQLiteConversationStore(path: $0) } ?? SQLiteConversationStore.inMemory()
        let app = buildApplication(configuration: configuration, host: host, store: store, logger: logger)
        try await app.runService()
    }
}
