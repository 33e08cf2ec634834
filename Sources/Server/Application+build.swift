import Engine
import Hummingbird
import Qwen3VL
import Store
import WebUI
import Logging
import NIOCore

/// Builds the HTTP application around a loaded engine. `postlens serve` and the tests both call this.
public func buildApplication(configuration: ServerConfiguration, engine: some ChatEngine,
                             logger: Logger? = nil) -> some ApplicationProtocol {
    buildApplication(configuration: configuration, host: ModelHost(modelID: configuration.modelID, engine: engine), logger: logger)
}

/// Builds the HTTP application around a model host that may still be loading (`/health` says `loading`,
/// chat requests get 503 until it is ready).
/// `batches`: where batch jobs are kept and who runs them (default: an in-memory queue run on demand).
public func buildApplication(configuration: ServerConfiguration, host: ModelHost, store: (any ConversationStore)? = nil,
                             batches: BatchService? = nil,
                             metrics: ServerMetrics = ServerMetrics(), drain: ShutdownDrain = ShutdownDrain(),
                             logger: Logger? = nil) -> some ApplicationProtocol {
    let logger = logger ?? {
        var logger = Logger(label: "postlens.server")
        logger.logLevel = .info
        return logger
    }()
    // Each connection gets a watcher of its own in its pipeline (the handler list is an autoclosure, evaluated per
    // connection), so that a request whose client goes away is cancelled.
    let connections = ConnectionWatchers()
    let router = buildRouter(configuration: configuration, host: host, store: store,
                             batches: batches ?? BatchService.inMemory(host: host, configuration: configuration, logger: logger),
                             metrics: metrics, drain: drain, connections: connections)
    return Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [connections.makeHandler(), CloseAfterResponseHandler()],
                                            idleTimeout: TimeAmount(configuration.clientTimeout))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "postlens"),
        logger: logger
    )
}

/// The routes, with error mapping outermost and authentication inside it.
/// The web page and its conversation API are mounted when a store is given (`serve` always gives one).
/// Each router gets its own metrics registry unless one is given (see `ServerMetrics`). `connections` are the watchers
/// that `buildApplication` puts in each connection's pipeline (none are there in router tests).
func buildRouter(configuration: ServerConfiguration, host: ModelHost, store: (any ConversationStore)? = nil,
                 batches: BatchService? = nil,
                 metrics: ServerMetrics = ServerMetrics(), drain: ShutdownDrain = ShutdownDrain(),
                 connections: ConnectionWatchers = ConnectionWatchers()) -> Router<ServerContext> {
    let batches = batches ?? BatchService.inMemory(host: host, configuration: configuration, logger: Logger(label: "postlens.batches"))
    let router = Router(context: ServerContext.self)
    router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
    router.add(middleware: OpenAIErrorMiddleware(retryAfter: configuration.retryAfterSeconds))
    router.add(middleware: BrowserGuardMiddleware(policy: BrowserPolicy(configuration: configuration)))
    router.add(middleware: BodyLimitMiddleware { [maxBody = configuration.maxBodyBytes, maxWeb = configuration.maxWebBodyBytes] path in
        path.hasPrefix("/api/") ? maxWeb : maxBody
    })
    router.add(middleware: APIKeyMiddleware(keys: Set(configuration.apiKeys)))
    // One admission gate for the server: chat and analyze requests take a place in it or get 429, and the batch
    // worker's items wait for a place in the same gate (`EngineAnalyzer`'s admission control).
    let gate = batches.gate
    HealthController<ServerContext>(host: host, gate: gate, maxImagePixels: ImageTokenBudget.pixels(configuration.maxImageTokens))
        .register(on: router)
    MetricsController<ServerContext>(metrics: metrics, host: host, gate: gate, batches: batches).register(on: router)
    let images = ImageSource(configuration: configuration)
    router.addRoutes(ChatController(host: host, configuration: configuration, gate: gate, images: images, metrics: metrics,
                                    drain: drain, connections: connections).routes,
                     atPath: "/v1")
    router.addRoutes(ModelsController(host: host, configuration: configuration).routes, atPath: "/v1")
    router.addRoutes(AnalyzeController(host: host, configuration: configuration, gate: gate, images: images,
                                       connections: connections).routes, atPath: "/v1")
    router.addRoutes(BatchController(host: host, configuration: configuration, images: images, batches: batches).routes, atPath: "/v1")
    if let store { addWebRoutes(to: router, store: store, options: WebUIOptions(maxBodyBytes: configuration.maxWebBodyBytes)) }
    return router
}
