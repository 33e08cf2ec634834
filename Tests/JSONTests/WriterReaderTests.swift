import Foundation
import JSON
import XCTest

final class WriterReaderTests: XCTestCase {
    func testWriterEscapesAndSorts() {
        let value: JSONValue = ["b": "quote \" slash / back \\ nl \n tab \t bell \u{07} 中文 😀", "a": [1, 2.5, nil, true]]
        XCTAssertEqual(value.compactText, #"{"b":"quote \" slash / back \\ nl \n tab \t bell \u0007 中文 😀","a":[1,2.5,null,true]}"#)
        XCTAssertEqual(value.sortedText, #"{"a":[1,2.5,null,true],"b":"quote \" slash / back \\ nl \n tab \t bell \u0007 中文 😀"}"#)
        XCTAssertEqual((["x": [1]] as JSONValue).prettyText, "{\n  \"x\": [\n    1\n  ]\n}")
        XCTAssertEqual(JSONValue.array([]).prettyText, "[]")
    }

    func testWrittenTextParsesBackToTheSameValue() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let value = RandomJSON.value(depth: 0, using: &generator)
            for writer in [JSONWriter(), JSONWriter(sortedKeys: true, indent: "  ")] {
                let text = writer.string(value)
                XCTAssertEqual(try JSONValue.parse(text), value, text)
                // Foundation agrees that it is JSON.
                XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]), text)
            }
        }
    }

    func testReaderNamesPaths() throws {
        let body = try JSONValue.parse(#"{"messages": [{"role": "user", "content": [{"type": "text"}, {"image_url": {"url": 3}}]}], "a.b": {"c": null}}"#)
        let root = JSONReader(body)
        let parts = try root.required("messages").array()[0].required("content").array()
        XCTAssertThrowsError(try parts[1].required("image_url").required("url").string()) { error in
            XCTAssertEqual(error as? JSONReadError,
                           JSONReadError(path: "messages[0].content[1].image_url.url", problem: .wrongType(expected: "a string", found: "a number")))
            XCTAssertEqual("\(error)", "invalid type for 'messages[0].content[1].image_url.url': expected a string, found a number")
        }
        XCTAssertThrowsError(try parts[0].required("text")) { error in
            XCTAssertEqual((error as? JSONReadError)?.path, "messages[0].content[0].text")
        }
        // null reads as absent; odd keys are quoted.
        XCTAssertNil(try root.required("a.b").optional("c"))
        XCTAssertEqual(root.childPath("a.b"), #"["a.b"]"#)
        XCTAssertThrowsError(try root.required("a.b").required("c")) { error in
            XCTAssertEqual((error as? JSONReadError)?.path, #"["a.b"].c"#)
        }
        XCTAssertThrowsError(try JSONReader(.string("x")).optional("k")) { error in
            XCTAssertEqual((error as? JSONReadError)?.displayPath, "(top level)")
        }
    }

    func testIntegersReadExactly() throws {
        XCTAssertEqual(try JSONReader(try JSONValue.parse("151643")).int(), 151643)
        XCTAssertEqual(try JSONReader(try JSONValue.parse("1e3")).int(), 1000)
        XCTAssertThrowsError(try JSONReader(try JSONValue.parse("1.5")).int())
        XCTAssertThrowsError(try JSONReader(try JSONValue.parse("1e300")).int())
    }

    func testCodableBridge() throws {
        struct Holder: Codable, Equatable { var stats: JSONValue? }
        let holder = Holder(stats: ["tokens": 12, "rate": 3.5, "tags": ["a"], "none": nil])
        let data = try JSONEncoder().encode(holder)
        XCTAssertEqual(try JSONDecoder().decode(Holder.self, from: data), holder)
    }

    func testObjectEditing() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["a"] = 3
        object["c"] = 4
        object["b"] = nil
        XCTAssertEqual(object.keys, ["a", "c"])
        XCTAssertEqual(JSONValue.object(object).compactText, #"{"a":3,"c":4}"#)
    }
}

/// Random documents for round-trip and fuzz-style tests.
enum RandomJSON {
    static let samples = ["", "a", "中文", "😀👩‍👩‍👧", "\"\\/", "\u{0}\u{1F}", "e\u{301}", "\u{FFFD}", "ก้", "नमस्ते"]

    static func value(depth: Int, using g: inout some RandomNumberGenerator) -> JSONValue {
        switch Int.random(in: 0..<(depth > 4 ? 5 : 7), using: &g) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &g))
        case 2: return JSONValue(Int.random(in: -1_000_000...1_000_000, using: &g))
        case 3: return JSONValue(Double.random(in: -1e6...1e6, using: &g))
        case 4: return .string(samples.randomElement(using: &g)! + String(Int.random(in: 0...99, using: &g)))
        case 5: return .array((0..<Int.random(in: 0...4, using: &g)).map { _ in value(depth: depth + 1, using: &g) })
        default:
            var object = JSONObject()
            for i in 0..<Int.random(in: 0...4, using: &g) {
                object["k\(i)" + (samples.randomElement(using: &g) ?? "")] = value(depth: depth + 1, using: &g)
            }
            return .object(object)
        }
    }
}
