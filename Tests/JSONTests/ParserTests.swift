import Foundation
import JSON
import XCTest

final class ParserTests: XCTestCase {
    func testValuesKeepOrderAndNumberText() throws {
        let value = try JSONValue.parse(#"{"z": 1, "a": [true, null, "x"], "n": -0.50, "big": 12345678901234567890, "e": 1E+3}"#)
        guard case .object(let object) = value else { return XCTFail("not an object") }
        XCTAssertEqual(object.keys, ["z", "a", "n", "big", "e"])
        XCTAssertEqual(value["n"], .number(JSONNumber(text: "-0.50")!))
        guard case .number(let big)? = value["big"], case .number(let e)? = value["e"] else { return XCTFail() }
        XCTAssertEqual(big.text, "12345678901234567890")
        XCTAssertEqual(e.text, "1E+3")
        XCTAssertEqual(e.int, 1000)
        XCTAssertEqual(value.compactText, #"{"z":1,"a":[true,null,"x"],"n":-0.50,"big":12345678901234567890,"e":1E+3}"#)
    }

    func testEqualityIsByMeaning() throws {
        XCTAssertEqual(try JSONValue.parse(#"{"a":1,"b":2}"#), try JSONValue.parse(#"{"b":2.0,"a":1e0}"#))
        XCTAssertNotEqual(try JSONValue.parse(#"{"a":1}"#), try JSONValue.parse(#"{"a":1,"b":2}"#))
        XCTAssertEqual(Set([try JSONValue.parse("[1,{\"x\":0}]"), try JSONValue.parse("[1.0,{\"x\":-0}]")]).count, 1)
    }

    func testByteOrderMarkIsSkipped() throws {
        let body = Data([0xEF, 0xBB, 0xBF]) + Data(#"{"a": 1}"#.utf8)
        XCTAssertEqual(try JSONValue.parse(body), ["a": 1])
    }

    func testSurrogateEscapes() throws {
        // A paired surrogate is one scalar; an unpaired one is U+FFFD and the escape after it stands alone.
        XCTAssertEqual(try JSONValue.parse(#""\ud83d\ude00""#), .string("😀"))
        XCTAssertEqual(try JSONValue.parse(#""\ud800\u0041""#), .string("\u{FFFD}A"))
        XCTAssertEqual(try JSONValue.parse(#""\udc00x""#), .string("\u{FFFD}x"))
        XCTAssertEqual(try JSONValue.parse(#""\ud800""#), .string("\u{FFFD}"))
        XCTAssertThrowsError(try JSONValue.parse(#""\u+041""#))
        XCTAssertThrowsError(try JSONValue.parse(#""\ud800\u00""#))
    }

    func testMalformedDocumentsAreRefusedWithAPosition() {
        let cases = ["", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "1e", "tru", "\"abc", "{\"a\" 1}", "[1 2]", "nul",
                     "\"\u{01}\"", "{} {}", "+1", ".5", "\"\\x\"", "[\"a\",,]"]
        for text in cases {
            XCTAssertThrowsError(try JSONValue.parse(text), "accepted \(text.debugDescription)") { error in
                guard let error = error as? JSONParseError else { return XCTFail("wrong error type") }
                XCTAssertFalse(error.isLimit)
                XCTAssertGreaterThanOrEqual(error.offset, 0)
            }
        }
        XCTAssertThrowsError(try JSONValue.parse("{\n  \"a\": tx}")) { error in
            let error = error as! JSONParseError
            XCTAssertEqual(error.line, 2)
            XCTAssertEqual(error.column, 8)
        }
    }

    func testInvalidUTF8InAStringIsRefused() {
        XCTAssertThrowsError(try JSONValue.parse(Data([0x22, 0xC3, 0x28, 0x22]))) { error in
            XCTAssertEqual((error as? JSONParseError)?.kind, .invalidUTF8)
        }
        XCTAssertThrowsError(try JSONValue.parse(Data([0x22, 0x5C, 0x6E, 0xFF, 0x22]))) { error in
            XCTAssertEqual((error as? JSONParseError)?.kind, .invalidUTF8)
        }
    }

    func testDuplicateKeysAreRefusedUnlessAllowed() throws {
        XCTAssertThrowsError(try JSONValue.parse(#"{"a":1,"a":2}"#)) { error in
            XCTAssertEqual((error as? JSONParseError)?.kind, .duplicateKey("a"))
        }
        // Past the linear-scan size too.
        let many = (0..<40).map { "\"k\($0)\":0" }.joined(separator: ",") + ",\"k7\":1"
        XCTAssertThrowsError(try JSONValue.parse("{\(many)}"))
        var limits = JSONParser.Limits()
        limits.rejectDuplicateKeys = false
        XCTAssertNoThrow(try JSONValue.parse(#"{"a":1,"a":2}"#, limits: limits))
    }

    func testDepthLimit() throws {
        let limits = JSONParser.Limits(maxDepth: 10)
        XCTAssertNoThrow(try JSONValue.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10), limits: limits))
        XCTAssertThrowsError(try JSONValue.parse(String(repeating: "[", count: 11) + String(repeating: "]", count: 11), limits: limits)) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .tooDeep(limit: 10))
        }
        // The default limit refuses a hostile depth without exhausting the stack.
        XCTAssertThrowsError(try JSONValue.parse(String(repeating: "{\"a\":", count: 100_000))) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .tooDeep(limit: 512))
        }
    }

    func testSizeAndValueLimits() throws {
        XCTAssertThrowsError(try JSONValue.parse("[1,2,3]", limits: JSONParser.Limits(maxBytes: 6))) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .tooLarge(limit: 6))
        }
        XCTAssertNoThrow(try JSONValue.parse("[1,2,3]", limits: JSONParser.Limits(maxValues: 4)))
        XCTAssertThrowsError(try JSONValue.parse("[1,2,3,4]", limits: JSONParser.Limits(maxValues: 4))) {
            let error = $0 as? JSONParseError
            XCTAssertEqual(error?.kind, .tooManyValues(limit: 4))
            XCTAssertEqual(error?.isLimit, true)
        }
    }

    func testParsePrefixStopsAfterTheValue() throws {
        let bytes = Array(#"say {"a": [1]} and more"#.utf8)
        let (value, end) = try bytes.withUnsafeBufferPointer { try JSONParser.parsePrefix($0, from: 4) }
        XCTAssertEqual(value, ["a": [1]])
        XCTAssertEqual(end, 14)
    }

    func testNumberGrammar() {
        for good in ["0", "-0", "12", "1.5", "1e9", "1E-9", "-1.25e+10"] { XCTAssertNotNil(JSONNumber(text: good), good) }
        for bad in ["", "01", "1.", ".1", "+1", "1e", "--1", "0x1", "1 "] { XCTAssertNil(JSONNumber(text: bad), bad) }
        XCTAssertEqual(JSONNumber(3.0).text, "3")
        XCTAssertEqual(JSONNumber(0.25).text, "0.25")
        XCTAssertEqual(JSONValue(Double.nan), .null)
        XCTAssertNil(JSONNumber(text: "1.5")!.int)
        XCTAssertEqual(JSONNumber(text: "2.0")!.int, 2)
    }
}
