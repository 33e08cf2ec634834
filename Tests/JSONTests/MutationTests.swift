import Foundation
import JSON
import XCTest

/// A property-based smoke test of the parser on mutated documents (the libFuzzer run in `scripts/fuzz.sh` goes
/// further): whatever the bytes, parsing returns or throws `JSONParseError` — no trap, no hang — and whatever it
/// accepts, the writer's text of it parses back to the same value.
final class MutationTests: XCTestCase {
    func testMutatedDocumentsNeverTrapAndRoundTrip() throws {
        var generator = SeededGenerator(seed: 0x5EED)
        let seeds = [
            #"{"messages":[{"role":"user","content":[{"type":"text","text":"héllo \ud83d\ude00 \n"}]}],"top_k":-1,"stop":["a"]}"#,
            #"[1,-0.5e+10,true,false,null,"\u0000\\\"",{"":{}},[[]]]"#,
            #"{"a":"\ud800\u0041","b":"\udc00","c":1E400}"#,
        ].map { Array($0.utf8) }
        let tokens = Array("{}[]\",:\\u0123456789.eE+-tfnrlsa \u{7F}".utf8) + [0x00, 0x80, 0xC3, 0xE4, 0xED, 0xF0, 0xFF]
        var accepted = 0
        for iteration in 0..<20_000 {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let at = Int.random(in: 0...bytes.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0 where at < bytes.count: bytes.remove(at: at)
                case 1: bytes.insert(tokens.randomElement(using: &generator)!, at: at)
                case 2 where at < bytes.count: bytes[at] = tokens.randomElement(using: &generator)!
                default: bytes = Array(bytes[..<at]) + Array(bytes[at...]).prefix(Int.random(in: 0...bytes.count, using: &generator))
                }
            }
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes, limits: JSONParser.Limits(maxDepth: 64))
            } catch {
                continue
            }
            accepted += 1
            XCTAssertEqual(try JSONValue.parse(value.compactText), value)
        }
        XCTAssertGreaterThan(accepted, 100, "the mutations should keep some documents valid")
    }
}

/// xorshift64*, so a failure reproduces.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}
