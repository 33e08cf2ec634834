import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Engine
import Imaging
import Logging
import Qwen3VL
@testable import Server

/// The tiny fixture model, loaded once per test process and shared by every test.
enum Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let modelFolder = root.appendingPathComponent("models/tiny")
    /// A short context so the "prompt too long" case stays cheap.
    static let contextLimit = 2048

    private static let loaded = Result { try InferenceEngine(directory: modelFolder, contextLimit: contextLimit, format: .f32) }
    static func engine() throws -> InferenceEngine { try loaded.get() }

    static func file(_ path: String) throws -> Data { try Data(contentsOf: root.appendingPathComponent(path)) }
    static func dataURL(_ path: String, mime: String = "image/png") throws -> String {
        "data:\(mime);base64," + (try file(path)).base64EncodedString()
    }
    static func image(_ path: String) throws -> RGBImage { try ImageDecoder.decode(try file(path)) }

    /// Quiet unless POSTLENS_TEST_LOG=debug (or another level) is set.
    static let logger: Logger = {
        var logger = Logger(label: "postlens.server.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["POSTLENS_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    static func configuration(_ edit: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
        var configuration = ServerConfiguration(modelID: "tiny")
        edit(&configuration)
        return configuration
    }
}

/// A response with its body parsed as JSON.
struct JSONResponse {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let raw: String
    let json: [String: Any]

    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    var errorParam: String? { error["param"] as? String }
    var errorCode: String? { error["code"] as? String }
    var errorMessage: String { error["message"] as? String ?? "" }
    var choice: [String: Any] { (json["choices"] as? [[String: Any]])?.first ?? [:] }
    var content: String? { (choice["message"] as? [String: Any])?["content"] as? String }
    var usage: [String: Any] { json["usage"] as? [String: Any] ?? [:] }
}

func runApp(_ configuration: ServerConfiguration = Fixture.configuration(), engine: (any ChatEngine)? = nil,
            _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
    let chosen: any ChatEngine = try engine ?? Fixture.engine()
    let app = buildApplication(configuration: configuration, host: ModelHost(modelID: configuration.modelID, engine: chosen),
                               logger: Fixture.logger)
    try await app.test(.router) { client in try await test(client) }
}

extension TestClientProtocol {
    func post(_ uri: String = "/v1/chat/completions", json object: [String: Any], headers: HTTPFields = [:]) async throws -> JSONResponse {
        let data = try JSONSerialization.data(withJSONObject: object)
        return try await post(uri, raw: data, headers: headers)
    }

    func post(_ uri: String = "/v1/chat/completions", raw data: Data, headers: HTTPFields = [:]) async throws -> JSONResponse {
        var fields = headers
        fields[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: fields, body: ByteBuffer(bytes: data)) { response in
            JSONResponse(response)
        }
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> JSONResponse {
        try await execute(uri: uri, method: .get, headers: headers) { JSONResponse($0) }
    }
}

extension JSONResponse {
    init(_ response: TestResponse) {
        status = response.status
        headers = response.headers
        raw = String(buffer: response.body)
        json = (try? JSONSerialization.jsonObject(with: Data(raw.utf8))) as? [String: Any] ?? [:]
    }

    /// The `data:` payloads of an SSE body, in order (`[DONE]` included as a string).
    var events: [String] {
        raw.components(separatedBy: "\n\n").compactMap { block in
            block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
        }
    }

    var chunks: [[String: Any]] {
        events.filter { $0 != "[DONE]" }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }
}

func user(_ text: String) -> [String: Any] { ["role": "user", "content": text] }

func userWithImages(_ text: String, _ urls: [String], detail: String? = nil) -> [String: Any] {
    var parts: [[String: Any]] = urls.map { url in
        var image: [String: Any] = ["url": url]
        if let detail { image["detail"] = detail }
        return ["type": "image_url", "image_url": image]
    }
    parts.append(["type": "text", "text": text])
    return ["role": "user", "content": parts]
}

/// Greedy parameters as the server builds them for `temperature: 0, max_tokens: n`.
func greedy(_ maxTokens: Int, engine: InferenceEngine) -> GenerationParameters {
    var parameters = GenerationParameters.defaults(for: engine.model)
    parameters.sampling.temperature = 0
    parameters.maxTokens = maxTokens
    parameters.repetitionGuard = RepetitionGuard()
    return parameters
}

/// A PNG whose header announces `width × height` (valid signature and IHDR CRC, no pixel data).
func pngHeader(width: UInt32, height: UInt32) -> Data {
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    let ihdr: [UInt8] = Array("IHDR".utf8) + be(width) + be(height) + [8, 2, 0, 0, 0]
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in ihdr {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    let iend: [UInt8] = be(0) + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
    return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + be(13) + ihdr + be(~crc) + iend)
}

/// An engine that holds every request until released: makes "queue full" deterministic.
final class BlockingEngine: ChatEngine, @unchecked Sendable {
    let defaultParameters = GenerationParameters()
    let preprocessor = PreprocessorConfiguration.qwen3VL
    let (started, startedContinuation) = AsyncStream<Void>.makeStream()
    let (release, releaseContinuation) = AsyncStream<Void>.makeStream()

    func generate(_ request: InferenceEngine.Request) -> AsyncThrowingStream<GenerationEvent, Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                self.startedContinuation.yield()
                for await _ in self.release { break }
                let result = GenerationResult(text: "ok", tokenIDs: [1], finishReason: .stop, usage: Usage(promptTokens: 3, completionTokens: 1),
                                              timings: Timings(), logprobs: [])
                continuation.yield(.delta(text: "ok", tokenIDs: [1], logprobs: []))
                continuation.yield(.finished(result))
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// A refusal in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) with this status (and code).
func expectOpenAIError(_ response: JSONResponse, _ status: HTTPResponse.Status, code: String? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "body: \(response.raw.prefix(500))", sourceLocation: sourceLocation)
    #expect(!response.errorMessage.isEmpty && response.error["type"] is String, "body: \(response.raw.prefix(500))",
            sourceLocation: sourceLocation)
    #expect(response.error.keys.contains("param") && response.error.keys.contains("code"), sourceLocation: sourceLocation)
    if let code { #expect(response.errorCode == code, "body: \(response.raw.prefix(500))", sourceLocation: sourceLocation) }
}

/// The server still answers an ordinary request.
func expectServesNormally(_ client: some TestClientProtocol, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let response = try await client.post(json: ["max_tokens": 2, "temperature": 0, "messages": [user("hi")]])
    #expect(response.status == .ok, "a normal request after the refusal: \(response.raw.prefix(300))", sourceLocation: sourceLocation)
}

/// Runs `body` and checks it ended within `seconds` (a generous guard against hangs, not a benchmark).
func withinSeconds<T>(_ seconds: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () async throws -> T) async rethrows -> T {
    let start = ContinuousClock.now
    let result = try await body()
    let elapsed = ContinuousClock.now - start
    #expect(elapsed < .milliseconds(Int64(seconds * 1000)), "\(what) took \(elapsed)", sourceLocation: sourceLocation)
    return result
}
