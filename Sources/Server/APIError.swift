import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Imaging
import NIOCore
import Qwen3VL

/// Problems the server finds in a request, typed; they become OpenAI-shaped JSON only in `APIError`.
enum ServerError: Error, Equatable {
    /// The body is not JSON, or a field has the wrong type or value. `param` is the field path (`messages[0].content`).
    case invalidRequest(String, param: String?)
    case bodyNotUTF8
    case unknownModel(String)
    /// The request names an offered model that is not the one served now (`--offer`; switch with `POST /v1/models/load`).
    case modelNotLoaded(requested: String, served: String)
    /// A model switch that cannot start now: the reason says what to do.
    case modelSwitchRefused(String)
    case unsupportedN(Int)
    case remoteImageURL(param: String)
    case localImagesDisabled(param: String)
    case imagePathOutsideAllowedDirectory(param: String)
    case imageFileUnreadable(param: String)
    case badImageData(String, param: String)
    case imageFileTooLarge(bytes: Int, limit: Int, param: String)
    /// An image could not be decoded (`ImageError`), with the content part it came from.
    case image(ImageError, param: String)
    case missingAPIKey
    case wrongAPIKey
    case queueFull(limit: Int)
    case modelLoading
    case modelFailed(String)
    /// The server is stopping and its grace period for requests in flight has run out.
    case shuttingDown
    /// The client closed the connection before its answer was ready; its work was cancelled.
    case clientDisconnected
    /// A request limit (content parts, stop strings, top_k, …): a 400 naming the field and the limit.
    case limit(String, param: String?)
    /// The body did not arrive within the client timeout; the connection was closed.
    case bodyTimeout(seconds: Int)
    /// More images than `--max-images` in one request.
    case tooManyImages(limit: Int)
    /// The request's images together announce more pixels than the server decodes for one request.
    case requestPixelsExceeded(pixels: Int, limit: Int, param: String)
}

/// An error as OpenAI's API reports it: `{"error": {"message", "type", "param", "code"}}` with a status.
struct APIError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?
    var headers: HTTPFields = [:]

    init(status: HTTPResponse.Status, message: String, type: String = "invalid_request_error",
         param: String? = nil, code: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            let message: String
            let type: String
            let param: String?
            let code: String?
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)
                try c.encode(code, forKey: .code)
            }
            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        let error: Detail
    }

    var body: Body { Body(error: .init(message: message, type: type, param: param, code: code)) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        let data = try makeJSONEncoder().encode(body)
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension APIError {
    /// Maps any error that reaches the HTTP edge. Unknown errors are the server's fault (500).
    init(_ error: any Error, retryAfter: Int = 2) {
        switch error {
        case let error as APIError:
            self = error
        case let error as ServerError:
            self.init(error, retryAfter: retryAfter)
        case let error as ImageError:
            self.init(ServerError.image(error, param: "messages"), retryAfter: retryAfter)
        case let error as PromptError:
            switch error {
            case .tooLong:
                self.init(status: .badRequest, message: error.description, param: "messages", code: "context_length_exceeded")
            case .empty, .imageTokenMismatch:
                self.init(status: .badRequest, message: error.description, param: "messages")
            }
        case let error as ProcessorError:
            switch error {
            case .imageCountMismatch:
                self.init(status: .badRequest, message: error.description, param: "messages")
            case .missingControlToken:
                self.init(status: .internalServerError, message: error.description, type: "server_error")
            }
        case let error as ImageProcessingError:
            switch error {
            case .aspectRatioTooLarge:
                self.init(status: .unprocessableContent, message: error.description, param: "messages", code: "invalid_image")
            case .invalidSize:
                self.init(status: .badRequest, message: error.description, param: "max_pixels")
            }
        case let error as SchemaError:
            self.init(schema: error, param: "response_format")
        case let error as AdmissionError:
            switch error {
            case .kvCacheFull:
                self.init(status: .serviceUnavailable, message: error.description, type: "server_error", code: "kv_cache_full",
                          headers: [.retryAfter: "\(retryAfter)"])
            case .exceedsKVBudget:
                self.init(status: .badRequest, message: error.description, param: "max_tokens", code: "context_length_exceeded")
            }
        case let error as HTTPError:
            self.init(http: error)
        case is NIOTooManyBytesError:
            self.init(http: HTTPError(.contentTooLarge))
        default:
            self.init(status: .internalServerError, message: "internal error; see the server log", type: "server_error")
        }
    }

    /// A schema constrained decoding cannot use: unsupported (a keyword outside the subset) or too complex (a work
    /// limit, named in the message and by `code: schema_too_complex`).
    init(schema error: SchemaError, param: String) {
        if case .tooComplex = error {
            self.init(status: .badRequest, message: error.description, param: param, code: "schema_too_complex")
        } else {
            self.init(status: .badRequest, message: "unsupported JSON schema: \(error.description)", param: param)
        }
    }

    init(http error: HTTPError) {
        switch error.status {
        case .notFound:
            self.init(status: .notFound, message: error.body ?? "no such route; see docs/api.md for the endpoints",
                      code: "not_found")
        case .contentTooLarge:
            // The rest of such a body is not read: the connection closes after the answer (`CloseAfterResponseHandler`).
            self.init(status: .contentTooLarge, message: "the request body is too large; send smaller or fewer images",
                      code: "request_too_large", headers: [.connection: "close"])
        case .methodNotAllowed:
            self.init(status: .methodNotAllowed, message: error.body ?? "method not allowed on this route")
        default:
            let serverSide = error.status.code >= 500
            self.init(status: error.status, message: error.body ?? error.status.reasonPhrase,
                      type: serverSide ? "server_error" : "invalid_request_error", headers: error.headers)
        }
    }

    init(_ error: ServerError, retryAfter: Int) {
        switch error {
        case let .invalidRequest(message, param):
            self.init(status: .badRequest, message: message, param: param)
        case .bodyNotUTF8:
            self.init(status: .badRequest, message: "the request body is not valid UTF-8; send JSON encoded as UTF-8")
        case let .unknownModel(name):
            self.init(status: .notFound, message: "the model '\(name)' does not exist; GET /v1/models lists the models this server offers",
                      param: "model", code: "model_not_found")
        case let .modelNotLoaded(requested, served):
            self.init(status: .conflict,
                      message: "the model '\(requested)' is offered but not loaded: '\(served)' is served now; switch with POST /v1/models/load {\"model\": \"\(requested)\"} (or the web page's model picker)",
                      param: "model", code: "model_not_loaded")
        case let .modelSwitchRefused(reason):
            self.init(status: .conflict, message: "the model cannot be switched now: \(reason)", param: "model", code: "model_switch_refused")
        case let .unsupportedN(n):
            self.init(status: .badRequest, message: "n=\(n) is not supported; this server returns exactly one choice (n=1)",
                      param: "n")
        case let .remoteImageURL(param):
            self.init(status: .badRequest,
                      message: "remote image URLs (http/https) are not fetched by this server unless it runs with --allow-remote-images; send the image inline as a data: URL (data:image/png;base64,...)",
                      param: param, code: "unsupported_image_url")
        case let .localImagesDisabled(param):
            self.init(status: .badRequest,
                      message: "local image paths are refused; start the server with --allow-image-dir DIR, or send a data: URL",
                      param: param, code: "unsupported_image_url")
        case let .imagePathOutsideAllowedDirectory(param):
            self.init(status: .badRequest, message: "the image path is outside the directory allowed by --allow-image-dir",
                      param: param, code: "invalid_image_url")
        case let .imageFileUnreadable(param):
            self.init(status: .badRequest, message: "the image file does not exist or cannot be read",
                      param: param, code: "invalid_image_url")
        case let .badImageData(message, param):
            self.init(status: .badRequest, message: message, param: param, code: "invalid_image_url")
        case let .imageFileTooLarge(bytes, limit, param):
            self.init(status: .contentTooLarge, message: "the image file has \(bytes) bytes, more than the limit of \(limit)",
                      param: param, code: "image_too_large")
        case let .image(imageError, param):
            if case .tooLarge = imageError {
                self.init(status: .contentTooLarge, message: "image too large: \(imageError.description)", param: param,
                          code: "image_too_large")
            } else {
                self.init(status: .unprocessableContent,
                          message: "the image could not be decoded: \(imageError.description). Send PNG, JPEG, WebP or GIF",
                          param: param, code: "invalid_image")
            }
        case .missingAPIKey:
            self.init(status: .unauthorized,
                      message: "no API key given; send it as 'Authorization: Bearer KEY'", code: "invalid_api_key")
        case .wrongAPIKey:
            self.init(status: .unauthorized, message: "incorrect API key", code: "invalid_api_key")
        case let .queueFull(limit):
            self.init(status: .tooManyRequests,
                      message: "the server is busy (\(limit) requests in flight); retry after \(retryAfter) s",
                      type: "rate_limit_error", code: "queue_full", headers: [.retryAfter: "\(retryAfter)"])
        case .modelLoading:
            self.init(status: .serviceUnavailable, message: "the model is still loading; retry after \(retryAfter) s",
                      type: "server_error", code: "model_loading", headers: [.retryAfter: "\(retryAfter)"])
        case let .modelFailed(reason):
            self.init(status: .serviceUnavailable, message: "the model failed to load: \(reason)", type: "server_error",
                      code: "model_unavailable")
        case .shuttingDown:
            self.init(status: .serviceUnavailable, message: "the server is shutting down; the answer was cut short",
                      type: "server_error", code: "server_shutting_down")
        case let .limit(message, param):
            self.init(status: .badRequest, message: message, param: param, code: "limit_exceeded")
        case let .bodyTimeout(seconds):
            self.init(status: .requestTimeout, message: "the request body did not arrive within \(seconds) s (--client-timeout)",
                      code: "request_timeout", headers: [.connection: "close"])
        case let .tooManyImages(limit):
            self.init(status: .badRequest, message: "the request has more than \(limit) images, the most one request may bring (--max-images)",
                      param: "messages", code: "too_many_images")
        case let .requestPixelsExceeded(pixels, limit, param):
            self.init(status: .contentTooLarge,
                      message: "the request's images announce \(pixels) pixels together, more than the \(limit) one request may bring; send fewer or smaller images",
                      param: param, code: "image_too_large")
        case .clientDisconnected:
            // nginx's status for a client that went away: the answer is for the log and the metrics (only a client that
            // closed just its sending side still reads it).
            self.init(status: .clientClosedRequest, message: "the client closed the connection; the request was cancelled",
                      code: "client_closed_request")
        }
    }
}

/// Turns every error — ours, the engine's, Hummingbird's (unknown route, body too large) — into OpenAI's JSON,
/// logs it, and tags every response with the request id.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let retryAfter: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let apiError = APIError(error, retryAfter: retryAfter)
            if apiError.status == .clientClosedRequest {
                context.logger.info("client went away; request cancelled")
            } else if apiError.status == .internalServerError {
                context.logger.error("request failed", metadata: ["status": "\(apiError.status.code)", "error": "\(error)"])
            } else {
                context.logger.info("request refused", metadata: [
                    "status": "\(apiError.status.code)", "code": "\(apiError.code ?? "-")", "param": "\(apiError.param ?? "-")",
                ])
            }
            response = try apiError.response(from: request, context: context)
        }
        response.headers[.requestID] = context.id
        return response
    }
}

/// Bearer-key check for every route but `/health`, `/metrics` and the web page's static files (a browser cannot send
/// the key when it first opens the page; the page sends it on its `/api` and `/v1` calls).
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let isPublic = path == "/health" || path == "/metrics" || path == "/" || path == "/index.html" || path.hasPrefix("/assets/")
        guard !keys.isEmpty, !isPublic else { return try await next(request, context) }
        guard let header = request.headers[.authorization] else { throw ServerError.missingAPIKey }
        let prefix = "bearer "
        guard header.count > prefix.count, header.lowercased().hasPrefix(prefix) else { throw ServerError.missingAPIKey }
        let key = String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
        // Compare against every key without stopping early, so timing says little about which prefix matched.
        var matched = false
        for candidate in keys where constantTimeEqual(candidate, key) { matched = true }
        guard matched else { throw ServerError.wrongAPIKey }
        return try await next(request, context)
    }

    private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }
}

extension HTTPResponse.Status {
    /// 499, nginx's "client closed request".
    static let clientClosedRequest = HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
}
