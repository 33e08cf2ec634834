import Foundation
import Testing
@testable import Tokenizer

// Prints load time and encode throughput; never asserts on timing (build with -c release for real numbers).

@Test func reportLoadTimeAndThroughput() throws {
    let clock = ContinuousClock()
    let data = try Data(contentsOf: Fixtures.tokenizerDirectory.appendingPathComponent("tokenizer.json"))
    let config = try Data(contentsOf: Fixtures.tokenizerDirectory.appendingPathComponent("tokenizer_config.json"))
    var tokenizer: Tokenizer?
    let load = try clock.measure { tokenizer = try Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: config) }
    let parse = try clock.measure { _ = try JSONNode.parse(data, file: "tokenizer.json") }
    let texts = Fixtures.corpus.entries.map(\.text)
    let bytes = texts.reduce(0) { $0 + $1.utf8.count }
    let rounds = 20
    var count = 0
    // The first round fills the piece cache; a fresh tokenizer measures the uncached path.
    let cold = clock.measure { for text in texts { count += tokenizer!.encode(text).count } }
    let warm = clock.measure { for _ in 0..<rounds { for text in texts { count += tokenizer!.encode(text).count } } }
    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
    print("""
        [tokenizer timing] load \(String(format: "%.3f", seconds(load))) s (JSON parse alone \(String(format: "%.3f", seconds(parse))) s, \
        \(data.count / 1_000_000) MB); encode cold \(String(format: "%.2f", Double(bytes) / seconds(cold) / 1e6)) MB/s, \
        warm \(String(format: "%.2f", Double(bytes * rounds) / seconds(warm) / 1e6)) MB/s over \(bytes) bytes (\(count) ids)
        """)
}
