import Synchronization
import Tokenizer

/// A set of token ids as a bitset over the model's logits.
public struct TokenMask: Sendable, Equatable {
    public private(set) var words: [UInt64]
    public let count: Int

    public init(count: Int) {
        self.count = count
        words = [UInt64](repeating: 0, count: (count + 63) / 64)
    }

    @inline(__always) public subscript(id: Int) -> Bool {
        get { id >= 0 && id < count && words[id >> 6] & (1 << UInt64(id & 63)) != 0 }
        set {
            guard id >= 0 && id < count else { return }
            if newValue { words[id >> 6] |= 1 << UInt64(id & 63) } else { words[id >> 6] &= ~(1 << UInt64(id & 63)) }
        }
    }

    public mutating func removeAll() {
        for i in words.indices { words[i] = 0 }
    }

    mutating func formUnion(_ other: [UInt64]) {
        words.withUnsafeMutableBufferPointer { w in
            for i in 0..<min(w.count, other.count) { w[i] |= other[i] }
        }
    }

    mutating func assign(_ other: [UInt64]) { words = other }

    /// How many ids are set.
    public var population: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Sets every disallowed logit to -infinity.
    public func apply(to logits: UnsafeMutablePointer<Float>, count n: Int) {
        words.withUnsafeBufferPointer { w in
            for word in 0..<w.count {
                let bits = w[word]
                let base = word << 6
                if bits == .max { continue }
                let end = min(base + 64, n)
                guard base < end else { break }
                if bits == 0 {
                    for i in base..<end { logits[i] = -.infinity }
                } else {
                    for i in base..<end where bits & (1 << UInt64(i - base)) == 0 { logits[i] = -.infinity }
                }
            }
        }
        for i in min(count, n)..<n { logits[i] = -.infinity }
    }
}

/// A byte trie over token byte strings, flattened in preorder: a walk visits node i, and skips its whole
/// subtree by jumping to `next[i]` when the automaton rejects the node's byte.
struct TokenTrie: Sendable {
    var byte: [UInt8] = []
    /// Depth of the node (1 for the first byte of a token).
    var depth: [UInt16] = []
    /// Index just past the node's subtree.
    var next: [Int32] = []
    /// Tokens ending at node i: tokenIDs[tokenStart[i]..<tokenStart[i + 1]].
    var tokenStart: [Int32] = []
    var tokenIDs: [Int32] = []

    init(tokens: [(id: Int, bytes: [UInt8])]) {
        let sorted = tokens.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        var path: [Int] = []  // node index at each depth - 1
        var previous: [UInt8] = []
        for (id, bytes) in sorted {
            var common = 0
            while common < min(previous.count, bytes.count) && previous[common] == bytes[common] { common += 1 }
            while path.count > common { next[path.removeLast()] = Int32(byte.count) }
            for d in common..<bytes.count {
                byte.append(bytes[d])
                depth.append(UInt16(d + 1))
                next.append(0)
                tokenStart.append(Int32(tokenIDs.count))
                path.append(byte.count - 1)
            }
            // Tokens attach to nodes in preorder, so the per-node ranges stay contiguous.
            tokenIDs.append(Int32(id))
            previous = bytes
        }
        while let last = path.popLast() { next[last] = Int32(byte.count) }
        tokenStart.append(Int32(tokenIDs.count))
    }

    var count: Int { byte.count }
}

/// What a matcher needs to know about the vocabulary, built once per tokenizer (~0.5 s for 151k tokens)
/// and shared by every request.
public final class GrammarVocabulary: Sendable {
    /// Length of the masks: the model's logits count (may exceed the tokenizer's vocabulary).
    public let size: Int
    /// Every ordinary token (added and special tokens are never allowed).
    let all: TokenTrie
    /// Tokens holding `"`, `\` or a control byte: inside a string only these need the automaton.
    let stringExits: TokenTrie
    /// The other tokens with their character counts, and per pending-UTF-8 state (0–3) which of them are valid
    /// string content: a string's content mask without walking anything.
    let plainIDs: [Int32]
    let plainCharacters: [Int32]
    let plainValid: [[UInt64]]
    let plainValidIndex: [[Bool]]
    /// Bytes of every id (empty for added and special tokens): byteStorage[byteOffsets[id]..<byteOffsets[id + 1]].
    let byteStorage: [UInt8]
    let byteOffsets: [Int32]

    /// The bytes of a token as the grammar sees them (empty for added, special and unknown ids).
    func bytes(of id: Int) -> ArraySlice<UInt8> {
        guard id >= 0 && id + 1 < byteOffsets.count else { return [] }
        return byteStorage[Int(byteOffsets[id])..<Int(byteOffsets[id + 1])]
    }

    public init(tokenizer: Tokenizer, size: Int) {
        self.size = size
        let added = Set(tokenizer.addedTokenIDs)
        var tokens: [(id: Int, bytes: [UInt8])] = []
        var exits: [(id: Int, bytes: [UInt8])] = []
        var ids: [Int32] = [], characters: [Int32] = []
        var valid = [[UInt64]](repeating: [UInt64](repeating: 0, count: (size + 63) / 64), count: 4)
        var validIndex = [[Bool]](repeating: [], count: 4)
        var storage: [UInt8] = [], offsets: [Int32] = [0]
        for id in 0..<size {
            let bytes = id < tokenizer.vocabularySize && !added.contains(id) && !tokenizer.isSpecial(id) ? tokenizer.tokenBytes(id) : []
            storage += bytes
            offsets.append(Int32(storage.count))
            guard !bytes.isEmpty else { continue }
            tokens.append((id, bytes))
            if bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
                exits.append((id, bytes))
                continue
            }
            ids.append(Int32(id))
            characters.append(Int32(bytes.filter { $0 & 0xC0 != 0x80 }.count))
            for pending in 0..<4 {
                var p = UInt8(pending), n: Int32 = 0
                let ok = bytes.allSatisfy { utf8Step(&p, &n, $0, maximum: .max) }
                validIndex[pending].append(ok)
                if ok { valid[pending][id >> 6] |= 1 << UInt64(id & 63) }
            }
        }
        all = TokenTrie(tokens: tokens)
        stringExits = TokenTrie(tokens: exits)
        plainIDs = ids
        plainCharacters = characters
        plainValid = valid
        plainValidIndex = validIndex
        byteStorage = storage
        byteOffsets = offsets
    }
}

/// Builds the vocabulary index on first use and keeps it (one per generator).
final class GrammarVocabularyCache: Sendable {
    private let cached = Mutex<GrammarVocabulary?>(nil)

    func vocabulary(tokenizer: Tokenizer, size: Int) -> GrammarVocabulary {
        cached.withLock { value in
            if let value, value.size == size { return value }
            let built = GrammarVocabulary(tokenizer: tokenizer, size: size)
            value = built
            return built
        }
    }
}
