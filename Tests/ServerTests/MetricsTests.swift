import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Engine
import Qwen3VL
@testable import Server

/// `GET /metrics` through the router. Each application has its own registry, so counts start at zero in every test.
@Suite struct MetricsTests {
    /// Every metric family docs/api.md lists, with its Prometheus type.
    static let documented: [(name: String, type: String)] = [
        ("postlens_http_requests_total", "counter"),
        ("postlens_chat_completions_total", "counter"),
        ("postlens_prompt_tokens_total", "counter"),
        ("postlens_completion_tokens_total", "counter"),
        ("postlens_cached_prompt_tokens_total", "counter"),
        ("postlens_image_tokens_total", "counter"),
        ("postlens_time_to_first_token_seconds", "histogram"),
        ("postlens_decode_seconds_per_token", "histogram"),
        ("postlens_requests_in_flight", "gauge"),
        ("postlens_requests_max_queue", "gauge"),
        ("postlens_engine_active_requests", "gauge"),
        ("postlens_engine_queued_requests", "gauge"),
        ("postlens_model_ready", "gauge"),
        ("postlens_cpu_isa_info", "gauge"),
        ("postlens_uptime_seconds", "gauge"),
        ("postlens_cache_hits", "gauge"),
        ("postlens_cache_misses", "gauge"),
        ("postlens_cache_bytes", "gauge"),
        ("postlens_cache_entries", "gauge"),
        ("postlens_jobs_database_up", "gauge"),
        ("postlens_jobs_queue_depth", "gauge"),
        ("postlens_jobs_claimed_items", "gauge"),
        ("postlens_jobs_expired_leases", "gauge"),
        ("postlens_jobs_lease_expiries", "gauge"),
        ("postlens_jobs", "gauge"),
    ]

    @Test func exposesEveryDocumentedMetricAfterACompletion() async throws {
        try await runApp { client in
            let chat = try await client.post(json: ["temperature": 0, "max_tokens": 4, "messages": [user("Hello.")]])
            #expect(chat.status == .ok)
            let response = try await client.get("/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = response.raw
            for (name, type) in Self.documented {
                #expect(text.contains("# TYPE \(name) \(type)\n"), "missing \(name) (\(type))")
                #expect(text.contains("# HELP \(name) "), "no help for \(name)")
            }
            // Only documented postlens_ families.
            let families = Set(text.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("# TYPE ") else { return nil }
                return line.split(separator: " ")[2].description
            })
            #expect(families == Set(Self.documented.map(\.name)))
        }
    }

    @Test func countersIncreaseAfterACompletion() async throws {
        try await runApp { client in
            let before = Samples(try await client.get("/metrics").raw)
            #expect(before["postlens_prompt_tokens_total"] == 0)
            #expect(before["postlens_completion_tokens_total"] == 0)
            #expect(before["postlens_time_to_first_token_seconds_count"] == 0)
            #expect(before["postlens_model_ready"] == 1)
            #expect(before["postlens_requests_in_flight"] == 0)
            #expect(before["postlens_requests_max_queue"] == Double(Fixture.configuration().maxQueue))

            let chat = try await client.post(json: ["temperature": 0, "max_tokens": 6, "messages": [user("Describe the weather.")]])
            #expect(chat.status == .ok)
            let promptTokens = try #require(chat.usage["prompt_tokens"] as? Int)
            let completionTokens = try #require(chat.usage["completion_tokens"] as? Int)
            var streamed: [String: Any] = ["temperature": 0, "max_tokens": 6, "messages": [user("Count to three.")], "stream": true]
            streamed["stream_options"] = ["include_usage": true]
            let stream = try await client.post(json: streamed)
            #expect(stream.events.last == "[DONE]")
            let streamUsage = try #require(stream.chunks.last?["usage"] as? [String: Any])
            let streamPrompt = try #require(streamUsage["prompt_tokens"] as? Int)
            let streamCompletion = try #require(streamUsage["completion_tokens"] as? Int)
            #expect(try await client.post(json: ["messages": []]).status == .badRequest)

            let after = Samples(try await client.get("/metrics").raw)
            #expect(after["postlens_prompt_tokens_total"] == Double(promptTokens + streamPrompt))
            #expect(after["postlens_completion_tokens_total"] == Double(completionTokens + streamCompletion))
            #expect(after["postlens_time_to_first_token_seconds_count"] == 2)
            #expect((after["postlens_time_to_first_token_seconds_sum"] ?? 0) > 0)
            #expect((after["postlens_decode_seconds_per_token_count"] ?? 0) >= 1)
            let route = #"route="/v1/chat/completions",method="POST""#
            #expect(after["postlens_http_requests_total{\(route),status=\"200\"}"] == 2)
            #expect(after["postlens_http_requests_total{\(route),status=\"400\"}"] == 1)
            // The first scrape was counted once its body was written.
            #expect(after[#"postlens_http_requests_total{route="/metrics",method="GET",status="200"}"#] == 1)
            let finished = after.values(of: "postlens_chat_completions_total")
            #expect(finished.reduce(0, +) == 2)
            #expect(finished.count >= 1)
            #expect(after["postlens_requests_in_flight"] == 0)
        }
    }

    @Test func unknownRoutesShareOneLabel() async throws {
        try await runApp { client in
            _ = try await client.get("/no/such/path/1")
            _ = try await client.get("/no/such/path/2")
            let samples = Samples(try await client.get("/metrics").raw)
            #expect(samples[#"postlens_http_requests_total{route="unmatched",method="GET",status="404"}"#] == 2)
        }
    }

    /// A dedicated engine, so the cache counters are this test's alone (the shared fixture engine serves every test).
    @Test func cacheGaugesSeeASecondRequestAboutTheSameImage() async throws {
        let engine = try InferenceEngine(directory: Fixture.modelFolder, contextLimit: Fixture.contextLimit)
        try await runApp(engine: engine) { client in
            let start = Samples(try await client.get("/metrics").raw)
            #expect(start[#"postlens_cache_hits{cache="prefix"}"#] == 0)
            #expect(start[#"postlens_cache_entries{cache="vision"}"#] == 0)
            let body: [String: Any] = [
                "temperature": 0, "max_tokens": 3,
                "messages": [userWithImages("What is in the picture?", [try Fixture.dataURL("models/tiny/reference/img_a.png")])],
            ]
            let first = try await client.post(json: body)
            #expect(first.status == .ok)
            // The engine files the answer's KV in the prefix cache just after the last event: wait until it is idle.
            let afterFirst = try await idleSamples(client)
            #expect((afterFirst[#"postlens_cache_entries{cache="vision"}"#] ?? 0) >= 1)
            #expect((afterFirst[#"postlens_cache_bytes{cache="vision"}"#] ?? 0) > 0)
            #expect((afterFirst[#"postlens_cache_misses{cache="vision"}"#] ?? 0) >= 1)
            #expect((afterFirst[#"postlens_cache_entries{cache="prefix"}"#] ?? 0) >= 1)

            let second = try await client.post(json: body)
            #expect(second.status == .ok)
            let afterSecond = try await idleSamples(client)
            #expect((afterSecond[#"postlens_cache_hits{cache="prefix"}"#] ?? 0) >= 1)
            #expect((afterSecond["postlens_cached_prompt_tokens_total"] ?? 0) > 0)
            let imageTokens = try #require(afterFirst["postlens_image_tokens_total"])
            #expect(imageTokens > 0)
            #expect(afterSecond["postlens_image_tokens_total"] == 2 * imageTokens)
            #expect(afterSecond["postlens_engine_active_requests"] == 0)
            #expect(afterSecond["postlens_engine_queued_requests"] == 0)
        }
    }

    @Test func needsNoAPIKey() async throws {
        try await runApp(Fixture.configuration { $0.apiKeys = ["secret"] }) { client in
            #expect(try await client.get("/v1/models").status == .unauthorized)
            let response = try await client.get("/metrics")
            #expect(response.status == .ok)
            #expect(response.raw.contains("# TYPE postlens_model_ready gauge"))
            let samples = Samples(try await client.get("/metrics").raw)
            #expect(samples[#"postlens_http_requests_total{route="/v1/models",method="GET",status="401"}"#] == 1)
        }
    }

    @Test func gaugesWhileLoadingAndWithAStandInEngine() async throws {
        let host = ModelHost(modelID: "tiny")
        let app = buildApplication(configuration: Fixture.configuration(), host: host, logger: Fixture.logger)
        try await app.test(.router) { client in
            let loading = Samples(try await client.get("/metrics").raw)
            #expect(loading["postlens_model_ready"] == 0)
            #expect(loading[#"postlens_cache_hits{cache="vision"}"#] == 0)
            host.setReady(BlockingEngine())  // keeps no statistics: the engine gauges stay at zero
            let ready = Samples(try await client.get("/metrics").raw)
            #expect(ready["postlens_model_ready"] == 1)
            #expect(ready["postlens_engine_active_requests"] == 0)
        }
    }
}

/// The metrics once the engine has no request left (at most 5 s), so its cache counters have settled.
func idleSamples(_ client: any TestClientProtocol) async throws -> Samples {
    let deadline = ContinuousClock.now + .seconds(5)
    while true {
        let samples = Samples(try await client.get("/metrics").raw)
        let busy = (samples["postlens_engine_active_requests"] ?? 0) + (samples["postlens_engine_queued_requests"] ?? 0)
        if busy == 0 || ContinuousClock.now > deadline { return samples }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Samples of a text exposition, keyed by the series as written (`name` or `name{labels}`).
struct Samples {
    private var values: [String: Double] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
    }

    subscript(_ series: String) -> Double? { values[series] }

    /// The values of every series of one family (any labels).
    func values(of name: String) -> [Double] {
        values.filter { $0.key == name || $0.key.hasPrefix(name + "{") }.map(\.value)
    }
}
