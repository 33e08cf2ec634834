import Foundation
import Testing
@testable import Tokenizer
import JSON

// Loading small hand-written tokenizer.json files: merge formats, ignore_merges, config flags, and errors.

private func qwenPreTokenizer() -> [String: Any] { [
    "type": "Sequence",
    "pretokenizers": [
        ["type": "Split", "pattern": ["Regex": QwenPreTokenizer.pattern], "behavior": "Isolated", "invert": false],
        ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
    ],
] }

/// A tokenizer.json whose vocabulary is the 256 byte tokens plus `extra`.
private func tokenizerJSON(extra: [String] = ["ab", "abc", "bc"], merges: Any = [["a", "b"], ["ab", "c"]],
                           ignoreMerges: Bool = false, modelType: String = "BPE",
                           normalizer: Any = ["type": "NFC"], preTokenizer: Any = qwenPreTokenizer(),
                           addedTokens: [[String: Any]] = []) -> Data {
    var vocab: [String: Int] = [:]
    for byte in 0..<256 { vocab[String(ByteLevel.byteToScalar[byte])] = byte }
    for (i, token) in extra.enumerated() { vocab[token] = 256 + i }
    let root: [String: Any] = [
        "version": "1.0",
        "added_tokens": addedTokens,
        "normalizer": normalizer,
        "pre_tokenizer": preTokenizer,
        "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
        "model": ["type": modelType, "vocab": vocab, "merges": merges, "ignore_merges": ignoreMerges,
                  "dropout": NSNull(), "byte_fallback": false],
    ]
    return try! JSONSerialization.data(withJSONObject: root)
}

@Test func mergesAsStringsOrPairs() throws {
    let pairs = try Tokenizer(tokenizerJSON: tokenizerJSON(merges: [["a", "b"], ["ab", "c"]]))
    let strings = try Tokenizer(tokenizerJSON: tokenizerJSON(merges: ["a b", "ab c"]))
    #expect(pairs.encode("abc") == [257])
    #expect(strings.encode("abc") == [257])
    #expect(pairs.encode("abcab bc") == strings.encode("abcab bc"))
    #expect(pairs.encode("bc") == [98, 99])
    #expect(pairs.vocabularySize == 259)
}

@Test func ignoreMergesEmitsWholeVocabularyPieces() throws {
    let honoring = try Tokenizer(tokenizerJSON: tokenizerJSON(ignoreMerges: true))
    let merging = try Tokenizer(tokenizerJSON: tokenizerJSON(ignoreMerges: false))
    #expect(honoring.encode("bc") == [258])   // "bc" is in the vocabulary but has no merge
    #expect(merging.encode("bc") == [98, 99])
}

@Test func configSpecialFlagsWin() throws {
    let added: [[String: Any]] = [["id": 259, "content": "<x>", "special": false, "normalized": false,
                                   "lstrip": false, "rstrip": false, "single_word": false]]
    let config = try JSONSerialization.data(withJSONObject: [
        "added_tokens_decoder": ["259": ["content": "<x>", "special": true], "260": ["content": "<y>", "special": false]],
    ])
    let plain = try Tokenizer(tokenizerJSON: tokenizerJSON(addedTokens: added))
    let configured = try Tokenizer(tokenizerJSON: tokenizerJSON(addedTokens: added), tokenizerConfigJSON: config)
    #expect(!plain.isSpecial(259))
    #expect(configured.isSpecial(259))
    #expect(configured.addedTokenIDs == [259, 260])
    #expect(configured.vocabularySize == 261)
    #expect(configured.encode("a<y>b<x>") == [97, 260, 98, 259])
    #expect(configured.decode([97, 260, 98, 259], skipSpecialTokens: true) == "a<y>b")
}

@Test func addedTokensLeftmostLongest() throws {
    let added: [[String: Any]] = [
        ["id": 259, "content": "<a>", "special": true],
        ["id": 260, "content": "<a><b>", "special": true],
        ["id": 261, "content": "<b>", "special": true],
    ]
    let tokenizer = try Tokenizer(tokenizerJSON: tokenizerJSON(addedTokens: added))
    #expect(tokenizer.encode("<a><b><b>") == [260, 261])
    #expect(tokenizer.encode("<<a>") == [60, 259])
}

@Test func missingFileThrows() {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-tokenizer-\(UUID().uuidString)")
    #expect {
        _ = try Tokenizer(directory: dir)
    } throws: { error in
        guard case TokenizerError.fileNotFound(let path) = error else { return false }
        return path.hasSuffix("tokenizer.json")
    }
}

@Test func malformedJSONThrows() {
    for text in ["{\"model\": ", "{\"model\": {}} x", "[1, 2,]", "{\"a\": \"\\q\"}", "", "{\"a\": tru}"] {
        #expect(throws: TokenizerError.self) { _ = try Tokenizer(tokenizerJSON: Data(text.utf8)) }
        do {
            _ = try Tokenizer(tokenizerJSON: Data(text.utf8))
        } catch let error as TokenizerError {
            guard case .malformedJSON = error else { Issue.record("\(text): \(error)"); continue }
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

@Test func missingAndMistypedKeysNameTheirPath() {
    #expect(throws: TokenizerError.invalidValue(file: "tokenizer.json", keyPath: "model", expected: "present")) {
        _ = try Tokenizer(tokenizerJSON: Data("{}".utf8))
    }
    #expect(throws: TokenizerError.invalidValue(file: "tokenizer.json", keyPath: "model.vocab", expected: "present")) {
        _ = try Tokenizer(tokenizerJSON: Data(#"{"model": {"type": "BPE", "merges": []}}"#.utf8))
    }
    #expect(throws: TokenizerError.invalidValue(file: "tokenizer.json", keyPath: #"model.vocab["a"]"#,
                                                expected: "a non-negative integer id, found a string")) {
        _ = try Tokenizer(tokenizerJSON: Data(#"{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}}"#.utf8))
    }
    #expect(throws: TokenizerError.self) {
        _ = try Tokenizer(tokenizerJSON: tokenizerJSON(merges: [["a", "zz"]]))
    }
}

@Test func unsupportedComponentsThrow() {
    #expect(throws: TokenizerError.unsupportedModel("model.type \"WordPiece\"")) {
        _ = try Tokenizer(tokenizerJSON: tokenizerJSON(modelType: "WordPiece"))
    }
    #expect(throws: TokenizerError.unsupportedNormalizer("normalizer.type \"NFKC\"")) {
        _ = try Tokenizer(tokenizerJSON: tokenizerJSON(normalizer: ["type": "NFKC"]))
    }
    #expect(throws: TokenizerError.self) {
        _ = try Tokenizer(tokenizerJSON: tokenizerJSON(preTokenizer: ["type": "Whitespace"]))
    }
    #expect(throws: TokenizerError.self) {
        _ = try Tokenizer(tokenizerJSON: tokenizerJSON(addedTokens: [["id": 300, "content": "<z>", "lstrip": true]]))
    }
    #expect(TokenizerError.unsupportedModel("x").description.contains("BPE"))
}

@Test func jsonParserHandlesEscapes() throws {
    let text = #"{"s": "a\"b\\c\/d\n\u00e9\ud83d\ude00\ud800x", "n": [-12, 3.5e2, 0], "t": true, "f": false, "z": null}"#
    let root = try JSONNode.parse(Data(text.utf8), file: "test")
    #expect(try root.required("s").string() == "a\"b\\c/d\né😀\u{FFFD}x")
    let numbers = try root.required("n").array()
    #expect(try numbers[0].int() == -12)
    guard case .number(let n) = numbers[1].value else { Issue.record("not a number"); return }
    #expect(n.double == 350)
    #expect(try root.required("t").bool())
    #expect(try root.optional("z") == nil)
}
