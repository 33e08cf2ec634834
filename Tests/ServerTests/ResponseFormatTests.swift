import Foundation
import HummingbirdTesting
import Testing
@testable import Server

@Suite struct ResponseFormatTests {
    static let schema = #"{"type":"json_schema","json_schema":{"name":"verdict","strict":true,"schema":{"type":"object","properties":{"verdict":{"enum":["allow","review","block"]},"reasons":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":2}},"required":["verdict","reasons"],"additionalProperties":false}}}"#

    @Test func jsonSchemaAnswersParseAndFollowTheSchemaKeyOrder() async throws {
        try await runApp { client in
            for seed in 1...3 {
                let body = #"{"max_tokens":80,"temperature":1,"seed":\#(seed),"messages":[{"role":"user","content":"Moderate this ad."}],"response_format":\#(Self.schema)}"#
                let response = try await client.post(raw: Data(body.utf8))
                #expect(response.status == .ok)
                guard response.choice["finish_reason"] as? String == "stop" else { continue }
                let text = try #require(response.content)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                #expect(["allow", "review", "block"].contains(object["verdict"] as? String))
                #expect((object["reasons"] as? [String])?.count ?? 99 <= 2)
                #expect(text.hasPrefix(#"{"verdict":"#))
            }
        }
    }

    @Test func jsonObjectModeReturnsAnObject() async throws {
        try await runApp { client in
            let body = #"{"max_tokens":60,"temperature":0,"messages":[{"role":"user","content":"Give JSON."}],"response_format":{"type":"json_object"}}"#
            let response = try await client.post(raw: Data(body.utf8))
            #expect(response.status == .ok)
            if response.choice["finish_reason"] as? String == "stop" {
                let text = try #require(response.content)
                #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
            }
        }
    }

    @Test func unsupportedKeywordIsA400NamingIt() async throws {
        try await runApp { client in
            let body = #"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object","oneOf":[]}}}}"#
            let response = try await client.post(raw: Data(body.utf8))
            #expect(response.status == .badRequest)
            let error = try #require(response.json["error"] as? [String: Any])
            #expect((error["message"] as? String)?.contains("oneOf") == true)
            #expect(error["param"] as? String == "response_format.json_schema.schema")
        }
    }

    @Test func unknownResponseFormatTypeIsA400() async throws {
        try await runApp { client in
            let body = #"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}"#
            let response = try await client.post(raw: Data(body.utf8))
            #expect(response.status == .badRequest)
            #expect((response.json["error"] as? [String: Any])?["param"] as? String == "response_format.type")
        }
    }
}
