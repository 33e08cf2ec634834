import Foundation

// The Qwen3-VL tokenizer (spec §5): added tokens matched first as whole strings, then NFC → Qwen split
// regex → byte-level BPE. Reads a Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`) and
// reproduces `transformers.AutoTokenizer(...).encode(text, add_special_tokens=False)` and `.decode(ids)`.

// MARK: - Tokenizer

public final class Tokenizer: Sendable {
    /// Base vocabulary + added tokens (151,669 for Qwen3-VL): one more than the largest id.
    public let vocabularySize: Int
    /// Bytes of the longest vocabulary token (added tokens aside). Text of `n` bytes encodes to at least
    /// `n / longestTextTokenBytes` tokens, which bounds a prompt's length before it is tokenized.
    public let longestTextTokenBytes: Int
    /// Ids of the added tokens (`<|im_start|>`, `<think>`, ...), ascending.
    public let addedTokenIDs: [Int]

    private let bpe: BPEModel
    private let normalizesNFC: Bool
    private let tokenToID: [String: Int]
    private let idToToken: [String?]          // [vocabularySize]
    private let byteStorage: [UInt8]          // token bytes, concatenated
    private let byteOffsets: [Int32]          // [vocabularySize + 1] into byteStorage
    private let specialFlags: [Bool]          // [vocabularySize]
    private let addedMatcher: AddedTokenMatcher

    /// Loads `tokenizer.json`, and `tokenizer_config.json` when the directory has one.
    public convenience init(directory: URL) throws {
        let jsonURL = directory.appendingPathComponent("tokenizer.json")
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        guard let json = FileManager.default.contents(atPath: jsonURL.path) else {
            throw TokenizerError.fileNotFound(path: jsonURL.path)
        }
        let config = FileManager.default.fileExists(atPath: configURL.path)
            ? FileManager.default.contents(atPath: configURL.path) : nil
        try self.init(tokenizerJSON: json, tokenizerConfigJSON: config)
    }

    /// Builds the tokenizer from the contents of `tokenizer.json` and, optionally, `tokenizer_config.json`
    /// (whose `added_tokens_decoder` special flags take precedence, as in transformers).
    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil) throws {
        let root = try JSONNode.parse(tokenizerJSON, file: "tokenizer.json")
        let spec = try TokenizerSpec(root: root)
        var added = spec.addedTokens
        if let configData = tokenizerConfigJSON {
            let config = try JSONNode.parse(configData, file: "tokenizer_config.json")
            try TokenizerSpec.applyConfig(config, to: &added)
        }

        // Id tables: the vocabulary, then added tokens (which may reuse a vocabulary id).
        let maxID = max(spec.vocab.map(\.id).max() ?? -1, added.map(\.id).max() ?? -1)
        let size = maxID + 1
        var idToToken = [String?](repeating: nil, count: size)
        var tokenToID = [String: Int](minimumCapacity: spec.vocab.count + added.count)
        for (token, id) in spec.vocab {
            idToToken[id] = token
            tokenToID[token] = id
        }
        var special = [Bool](repeating: false, count: size)
        for token in added {
            if idToToken[token.id] == nil { idToToken[token.id] = token.content }
            tokenToID[token.content] = token.id
            special[token.id] = token.special
        }

        // Decoded bytes of every id, flattened.
        var storage: [UInt8] = []
        storage.reserveCapacity(size * 7)
        var offsets = [Int32](repeating: 0, count: size + 1)
        let addedContent = Dictionary(added.map { ($0.id, $0.content) }, uniquingKeysWith: { _, last in last })
        for id in 0..<size {
            if let token = addedContent[id] ?? idToToken[id] {
                storage.append(contentsOf: ByteLevel.decode(token))
            }
            offsets[id + 1] = Int32(storage.count)
        }

        let bpe = try spec.makeBPE(tokenToID: tokenToID)
        self.vocabularySize = size
        var longest = 1
        for id in 0..<size where addedContent[id] == nil { longest = max(longest, Int(offsets[id + 1] - offsets[id])) }
        self.longestTextTokenBytes = longest
        self.addedTokenIDs = Array(Set(added.map(\.id))).sorted()
        self.bpe = bpe
        self.normalizesNFC = spec.normalizesNFC
        self.tokenToID = tokenToID
        self.idToToken = idToToken
        self.byteStorage = storage
        self.byteOffsets = offsets
        self.specialFlags = special
        self.addedMatcher = AddedTokenMatcher(added.map { ($0.content, $0.id) })
    }

    // MARK: Lookup

    /// The id of a vocabulary token (byte-level form, e.g. "Ġhello") or an added token ("<|im_start|>").
    public func tokenID(_ token: String) -> Int? { tokenToID[token] }

    /// The raw token string of an id: the vocabulary's byte-level form, or an added token's content.
    public func tokenString(_ id: Int) -> String? {
        guard id >= 0 && id < vocabularySize else { return nil }
        return idToToken[id]
    }

    /// The UTF-8 bytes this token decodes to (possibly part of a character); empty for unknown ids.
    public func tokenBytes(_ id: Int) -> [UInt8] {
        guard id >= 0 && id < vocabularySize else { return [] }
        return Array(byteStorage[Int(byteOffsets[id])..<Int(byteOffsets[id + 1])])
    }

    /// Whether the id is an added token flagged special (dropped by `skipSpecialTokens`).
    public func isSpecial(_ id: Int) -> Bool {
        id >= 0 && id < vocabularySize && specialFlags[id]
    }

    // MARK: Encoding

    /// Token ids of `text`, without any BOS/EOS (transformers' `add_special_tokens=False`).
    /// With `parseSpecialTokens: false`, added-token strings such as "<|im_start|>" or "<think>" are encoded
    /// as ordinary text — use this for untrusted user text.
    public func encode(_ text: String, parseSpecialTokens: Bool = true) -> [Int] {
        var output: [Int] = []
        output.reserveCapacity(text.utf8.count / 2 + 1)
        var text = text
        text.withUTF8 { bytes in
            guard parseSpecialTokens && !addedMatcher.isEmpty else {
                encodePlain(bytes, into: &output)
                return
            }
            var start = 0
            var position = 0
            while position < bytes.count {
                if let (length, id) = addedMatcher.match(bytes, at: position) {
                    if position > start { encodePlain(UnsafeBufferPointer(rebasing: bytes[start..<position]), into: &output) }
                    output.append(id)
                    position += length
                    start = position
                } else {
                    position += 1
                }
            }
            if bytes.count > start { encodePlain(UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]), into: &output) }
        }
        return output
    }

    /// NFC, then the split scanner, then BPE on each piece.
    private func encodePlain(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [Int]) {
        if normalizesNFC && !NFC.isStable(bytes) {
            var normalized = NFC.normalize(String(decoding: bytes, as: UTF8.self))
            normalized.withUTF8 { encodeNormalized($0, into: &output) }
        } else {
            encodeNormalized(bytes, into: &output)
        }
    }

    private func encodeNormalized(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [Int]) {
        // Scalars, their classes and byte offsets.
        var scalars: [UInt32] = []
        var classes: [CharClass] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(bytes.count)
        classes.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var p = 0
        while p < bytes.count {
            let (value, length) = UTF8Scan.scalar(bytes, at: p)
            scalars.append(value)
            classes.append(QwenPreTokenizer.classify(value))
            offsets.append(p)
            p += length
        }
        offsets.append(bytes.count)
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in
                var i = 0
                while i < s.count {
                    let end = QwenPreTokenizer.nextPieceEnd(s, c, i)
                    bpe.encode(UnsafeBufferPointer(rebasing: bytes[offsets[i]..<offsets[end]]), into: &output)
                    i = end
                }
            }
        }
    }

    // MARK: Decoding

    /// The text of `ids`: token bytes concatenated and read as UTF-8, invalid sequences replaced by U+FFFD
    /// (Rust's `from_utf8_lossy`, like the reference). Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && id < vocabularySize {
            if skipSpecialTokens && specialFlags[id] { continue }
            bytes.append(contentsOf: byteStorage[Int(byteOffsets[id])..<Int(byteOffsets[id + 1])])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the bytes of one id (nothing for unknown ids, or special ones when `skipSpecial`).
    func appendBytes(of id: Int, skipSpecial: Bool, to bytes: inout [UInt8]) {
        guard id >= 0 && id < vocabularySize, !(skipSpecial && specialFlags[id]) else { return }
        bytes.append(contentsOf: byteStorage[Int(byteOffsets[id])..<Int(byteOffsets[id + 1])])
    }
}

// MARK: - Added tokens

/// Leftmost-longest matching of added-token strings on raw UTF-8 (tokenizers' AddedVocabulary uses
/// Aho-Corasick with the same semantics). Qwen has 26 tokens, all starting with "<", so a first-byte filter
/// and a longest-first scan are enough.
struct AddedTokenMatcher: Sendable {
    private let tokens: [(bytes: [UInt8], id: Int)]   // longest first
    private let firstBytes: [Bool]                    // [256]

    init(_ tokens: [(String, Int)]) {
        self.tokens = tokens.filter { !$0.0.isEmpty }.map { (Array($0.0.utf8), $0.1) }.sorted { $0.bytes.count > $1.bytes.count }
        var first = [Bool](repeating: false, count: 256)
        for token in self.tokens { first[Int(token.bytes[0])] = true }
        self.firstBytes = first
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The longest added token starting at `position`: (byte length, id).
    @inline(__always)
    func match(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int) -> (Int, Int)? {
        guard firstBytes[Int(bytes[position])] else { return nil }
        let remaining = bytes.count - position
        for token in tokens where token.bytes.count <= remaining {
            var equal = true
            for k in 0..<token.bytes.count where bytes[position + k] != token.bytes[k] {
                equal = false
                break
            }
            if equal { return (token.bytes.count, token.id) }
        }
        return nil
    }
}

// MARK: - UTF-8 helpers

enum UTF8Scan {
    /// The scalar at `p` of valid UTF-8 (a Swift string's bytes) and its length in bytes.
    @inline(__always)
    static func scalar(_ bytes: UnsafeBufferPointer<UInt8>, at p: Int) -> (UInt32, Int) {
        let b0 = UInt32(bytes[p])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(bytes[p + 1] & 0x3F), 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(bytes[p + 1] & 0x3F) << 6 | UInt32(bytes[p + 2] & 0x3F), 3)
        }
        return ((b0 & 0x07) << 18 | UInt32(bytes[p + 1] & 0x3F) << 12 | UInt32(bytes[p + 2] & 0x3F) << 6
                    | UInt32(bytes[p + 3] & 0x3F), 4)
    }
}
