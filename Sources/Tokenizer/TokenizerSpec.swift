// What a tokenizer.json says, validated: the BPE model, normalizer, pre-tokenizer, decoder and added tokens.
// Everything the engine does not implement is rejected here with a TokenizerError, never ignored silently.
import JSON

struct AddedToken {
    var id: Int
    var content: String
    var special: Bool
}

struct TokenizerSpec {
    var vocab: [(token: String, id: Int)]
    var merges: [(left: String, right: String)]
    var ignoreMerges: Bool
    var normalizesNFC: Bool
    var addedTokens: [AddedToken]

    init(root: JSONNode) throws(TokenizerError) {
        // MARK: model
        let model = try root.required("model")
        let type = try model.optional("type")?.string() ?? "BPE"
        guard type == "BPE" else { throw .unsupportedModel("model.type \"\(type)\"") }
        if let dropout = try model.optional("dropout") {
            // tokenizers ignores 0.0 and 1.0
            guard case .number(let p) = dropout.value, p.double == 0 || p.double == 1 else { throw .unsupportedModel("model.dropout") }
        }
        if try model.optional("byte_fallback")?.bool() == true { throw .unsupportedModel("model.byte_fallback") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try model.optional(key), try !value.string().isEmpty { throw .unsupportedModel("model.\(key)") }
        }
        ignoreMerges = try model.optional("ignore_merges")?.bool() ?? false

        let vocabNode = try model.required("vocab")
        var vocab: [(token: String, id: Int)] = []
        let members = try vocabNode.members()
        vocab.reserveCapacity(members.count)
        for (token, value) in members {
            guard case .number(let number) = value, let id = Int(number.text), id >= 0, id < 1 << 31 else {
                throw vocabNode.member(token, value).mismatch("a non-negative integer id")
            }
            vocab.append((token, id))
        }
        self.vocab = vocab

        // merges: ["a b", ...] (older files) or [["a", "b"], ...] (tokenizers >= 0.20).
        let mergesNode = try model.optional("merges")
        var merges: [(left: String, right: String)] = []
        if let mergesNode {
            guard case .array(let elements) = mergesNode.value else { throw mergesNode.mismatch("an array") }
            merges.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                switch element {
                case .string(let line):
                    let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                    guard parts.count == 2 else {
                        throw .invalidValue(file: root.file, keyPath: "model.merges[\(index)]",
                                            expected: "\"left right\" (two tokens separated by one space)")
                    }
                    merges.append((String(parts[0]), String(parts[1])))
                case .array(let pair):
                    guard pair.count == 2, case .string(let left) = pair[0], case .string(let right) = pair[1] else {
                        throw .invalidValue(file: root.file, keyPath: "model.merges[\(index)]", expected: "a pair of strings")
                    }
                    merges.append((left, right))
                default:
                    throw .invalidValue(file: root.file, keyPath: "model.merges[\(index)]",
                                        expected: "a string or a pair of strings, found \(element.typeDescription)")
                }
            }
        }
        self.merges = merges

        // MARK: normalizer, pre-tokenizer, decoder
        normalizesNFC = try Self.parseNormalizer(try root.optional("normalizer"))
        if let pre = try root.optional("pre_tokenizer") { try Self.checkPreTokenizer(pre) } else {
            throw .unsupportedPreTokenizer("none (byte-level BPE needs ByteLevel)")
        }
        if let decoder = try root.optional("decoder") { try Self.checkDecoder(decoder) }

        // MARK: added tokens
        var added: [AddedToken] = []
        if let list = try root.optional("added_tokens") {
            for node in try list.array() {
                let content = try node.required("content").string()
                for option in ["lstrip", "rstrip", "single_word"] where try node.optional(option)?.bool() == true {
                    throw .unsupportedAddedToken("\(option) on \"\(content)\"")
                }
                let idNode = try node.required("id")
                let id = try idNode.int()
                guard id >= 0, id < 1 << 31 else { throw idNode.mismatch("a non-negative id") }
                added.append(AddedToken(id: id, content: content, special: try node.optional("special")?.bool() ?? false))
            }
        }
        addedTokens = added
    }

    /// tokenizer_config.json's `added_tokens_decoder` ({"151643": {"content": ..., "special": true}, ...}):
    /// its special flags override tokenizer.json's, and tokens missing from tokenizer.json are added.
    static func applyConfig(_ config: JSONNode, to added: inout [AddedToken]) throws(TokenizerError) {
        guard let decoder = try config.optional("added_tokens_decoder") else { return }
        for (key, value) in try decoder.members() {
            let node = decoder.member(key, value)
            guard let id = Int(key), id >= 0, id < 1 << 31 else { throw node.mismatch("keyed by a token id") }
            let content = try node.required("content").string()
            for option in ["lstrip", "rstrip", "single_word"] where try node.optional(option)?.bool() == true {
                throw .unsupportedAddedToken("\(option) on \"\(content)\"")
            }
            let special = try node.optional("special")?.bool() ?? false
            if let index = added.firstIndex(where: { $0.id == id }) {
                added[index].special = special
                added[index].content = content
            } else {
                added.append(AddedToken(id: id, content: content, special: special))
            }
        }
    }

    private static func parseNormalizer(_ node: JSONNode?) throws(TokenizerError) -> Bool {
        guard let node else { return false }
        let type = try node.required("type").string()
        switch type {
        case "NFC":
            return true
        case "Sequence":
            var nfc = false
            for child in try node.required("normalizers").array() { nfc = try parseNormalizer(child) || nfc }
            return nfc
        default:
            throw .unsupportedNormalizer("\(node.path).type \"\(type)\"")
        }
    }

    /// Accepts exactly Sequence[Split(Qwen regex, Isolated), ByteLevel(use_regex: false, no prefix space)].
    private static func checkPreTokenizer(_ node: JSONNode) throws(TokenizerError) {
        let type = try node.required("type").string()
        guard type == "Sequence" else { throw .unsupportedPreTokenizer("\(node.path).type \"\(type)\"") }
        let steps = try node.required("pretokenizers").array()
        guard steps.count == 2 else { throw .unsupportedPreTokenizer("a Sequence of \(steps.count) steps") }
        let split = steps[0], byteLevel = steps[1]
        let splitType = try split.required("type").string()
        guard splitType == "Split" else { throw .unsupportedPreTokenizer("\(split.path).type \"\(splitType)\"") }
        let pattern = try split.required("pattern")
        var regex = try pattern.optional("Regex")?.string()
        if regex == nil { regex = try pattern.optional("String")?.string() }
        guard regex == QwenPreTokenizer.pattern else {
            throw .unsupportedPreTokenizer("\(pattern.path) \(regex.map { "\"\($0)\"" } ?? "") (only the Qwen2/Qwen3 regex)")
        }
        guard try split.required("behavior").string() == "Isolated", try split.optional("invert")?.bool() != true else {
            throw .unsupportedPreTokenizer("\(split.path): only behavior Isolated, invert false")
        }
        guard try byteLevel.required("type").string() == "ByteLevel",
              try byteLevel.optional("add_prefix_space")?.bool() != true,
              try byteLevel.optional("use_regex")?.bool() == false else {
            throw .unsupportedPreTokenizer("\(byteLevel.path): only ByteLevel with add_prefix_space false, use_regex false")
        }
    }

    private static func checkDecoder(_ node: JSONNode) throws(TokenizerError) {
        let type = try node.required("type").string()
        guard type == "ByteLevel" else { throw .unsupportedDecoder("\(node.path).type \"\(type)\"") }
    }

    /// Resolves merges to ids: (left id, right id) -> (rank, id of left+right), as tokenizers' BPE builder.
    func makeBPE(tokenToID: [String: Int]) throws(TokenizerError) -> BPEModel {
        var byteIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = tokenToID[String(ByteLevel.byteToScalar[byte])] { byteIDs[byte] = Int32(id) }
        }
        var table = [UInt64: UInt64](minimumCapacity: merges.count)
        for (rank, merge) in merges.enumerated() {
            guard let left = tokenToID[merge.left], let right = tokenToID[merge.right] else {
                throw .invalidValue(file: "tokenizer.json", keyPath: "model.merges[\(rank)]",
                                    expected: "tokens of the vocabulary (\"\(merge.left)\" \"\(merge.right)\")")
            }
            guard let merged = tokenToID[merge.left + merge.right] else {
                throw .invalidValue(file: "tokenizer.json", keyPath: "model.merges[\(rank)]",
                                    expected: "a merge whose result \"\(merge.left + merge.right)\" is in the vocabulary")
            }
            let key = pairKey(Int32(left), Int32(right))
            table[key] = UInt64(rank) << 32 | UInt64(UInt32(merged))  // a repeated pair: the last wins, as tokenizers
        }
        let vocabTable = ignoreMerges ? Dictionary(vocab.map { ($0.token, $0.id) }, uniquingKeysWith: { _, b in b }) : [:]
        return BPEModel(byteIDs: byteIDs, merges: table, ignoreMerges: ignoreMerges, vocab: vocabTable)
    }
}
