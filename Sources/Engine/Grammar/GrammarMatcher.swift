/// Per-request state of constrained decoding: which tokens may come next, and the text so far.
///
/// Each step: `fillMask(&mask)` (allowed tokens, EOS only when the JSON is complete), sample, then
/// `accept(token:)`. The mask comes from walking the vocabulary's byte trie through copies of the automaton,
/// pruning a subtree at its first rejected byte. Inside a plain string (the common case) the ~97% of tokens
/// without `"`, `\` or control bytes are decided by a precomputed bitset per UTF-8 state, and only the rest
/// is walked. Masks of other states are cached by state (keys, separators and values repeat).
public final class GrammarMatcher {
    let grammar: JSONGrammar
    let vocabulary: GrammarVocabulary
    let eosTokenIDs: [Int]
    /// The live stacks (usually one; anyOf may keep several until the bytes tell them apart).
    private(set) var stacks: [Stack]
    private var cache: [[Stack]: [UInt64]] = [:]
    private static let cacheLimit = 256

    /// Most automaton stacks kept alive at once. Ambiguous `anyOf` branches fork the automaton; past this many
    /// forks the later ones are dropped (the answer stays valid JSON of the schema, it may only lose some
    /// alternatives), which bounds the work of every mask however ambiguous the schema.
    static let maxStacks = 64

    /// Compiles `format` for this vocabulary within `limits`. Throws `SchemaError` (a pattern outside the subset,
    /// bounds that admit no number, `.tooComplex`), or `CancellationError` once `isCancelled` says so.
    public init(format: ResponseFormat, vocabulary: GrammarVocabulary, eosTokenIDs: [Int], limits: SchemaLimits = .default,
                isCancelled: @escaping () -> Bool = { false }) throws {
        grammar = try JSONGrammar(schema: format.schema, budget: CompileBudget(limits: limits, isCancelled: isCancelled))
        self.vocabulary = vocabulary
        self.eosTokenIDs = eosTokenIDs
        stacks = [[Frame(rule: grammar.root)]]
    }

    /// The JSON is a complete document: EOS is allowed.
    public var isComplete: Bool { stacks.contains { grammar.accepts($0) } }

    /// More bytes may follow. When complete and not continuable the answer is over (EOS is forced).
    public var canContinue: Bool { stacks.contains { !$0.isEmpty } }

    /// Advances by one token's bytes. Returns false (state unchanged) when the grammar rejects them.
    @discardableResult
    public func accept(token: Int) -> Bool {
        if eosTokenIDs.contains(token) { return isComplete }
        guard token >= 0, token < vocabulary.size else { return false }
        let bytes = vocabulary.bytes(of: token)
        guard !bytes.isEmpty, let next = advance(grammar.tokenStarts(stacks), bytes) else { return false }
        stacks = next
        return true
    }

    /// Advances by raw bytes (tests, forced prefixes).
    @discardableResult
    public func accept(bytes: [UInt8]) -> Bool {
        guard let next = advance(stacks, bytes) else { return false }
        stacks = next
        return true
    }

    /// Fills `mask` with the tokens allowed next (cleared first).
    public func fillMask(_ mask: inout TokenMask) {
        mask.removeAll()
        if isComplete { for id in eosTokenIDs { mask[id] = true } }
        guard canContinue else { return }
        let started = grammar.tokenStarts(stacks)
        // Free string content with tokens left (the common case): the precomputed sets. A string at its last token
        // (only a closing token may come) is walked like any other state.
        if stacks.count == 1, let top = stacks[0].last, top.phase == 1,
           case .string(let minimum, let maximum, let dfa) = grammar.rules[Int(top.rule)], dfa < 0,
           maximum == .max || top.y < Int64(maximum) || top.a < minimum {
            stringContentMask(top, maximum: maximum, from: started, &mask)
            return
        }
        if let cached = cache[stacks] {
            mask.formUnion(cached)
            return
        }
        var walked = TokenMask(count: mask.count)
        walk(vocabulary.all, from: started, into: &walked)
        if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[stacks] = walked.words
        mask.formUnion(walked.words)
    }

    /// A fresh mask of the right size for `fillMask`.
    public func makeMask() -> TokenMask { TokenMask(count: vocabulary.size) }

    // MARK: Internals

    func advance(_ from: [Stack], _ bytes: some Sequence<UInt8>) -> [Stack]? {
        var current = from
        for b in bytes {
            var next: [Stack] = []
            for s in current {
                var copy = s
                grammar.advance(&copy, b, &next)
            }
            if next.isEmpty { return nil }
            current = next.count > 1 ? Array(Set(next).prefix(Self.maxStacks)) : next
        }
        return current
    }

    /// Inside free string content: plain tokens from the precomputed sets, the rest walked.
    private func stringContentMask(_ top: Frame, maximum: Int32, from started: [Stack], _ mask: inout TokenMask) {
        let pending = Int(top.small)
        if maximum == .max {
            mask.formUnion(vocabulary.plainValid[pending])
        } else {
            let room = maximum - top.a
            let valid = vocabulary.plainValidIndex[pending]
            vocabulary.plainIDs.withUnsafeBufferPointer { ids in
                vocabulary.plainCharacters.withUnsafeBufferPointer { chars in
                    for i in 0..<ids.count where chars[i] <= room && valid[i] { mask[Int(ids[i])] = true }
                }
            }
        }
        walk(vocabulary.stringExits, from: started, into: &mask)
    }

    /// Preorder walk of a token trie: each node's state is its parent's advanced by one byte.
    private func walk(_ trie: TokenTrie, from start: [Stack], into mask: inout TokenMask) {
        var levels: [[Stack]] = [start]
        levels.reserveCapacity(64)
        var next: [Stack] = []
        var i = 0
        let n = trie.count
        trie.byte.withUnsafeBufferPointer { bytes in
        trie.depth.withUnsafeBufferPointer { depth in
        trie.next.withUnsafeBufferPointer { skip in
            while i < n {
                let d = Int(depth[i])
                next.removeAll(keepingCapacity: true)
                for s in levels[d - 1] {
                    var copy = s
                    grammar.advance(&copy, bytes[i], &next)
                }
                if next.isEmpty {
                    i = Int(skip[i])
                    continue
                }
                let state = next.count > 1 ? Array(Set(next).prefix(Self.maxStacks)) : next
                if levels.count > d { levels[d] = state } else { levels.append(state) }
                let range = Int(trie.tokenStart[i])..<Int(trie.tokenStart[i + 1])
                for t in range { mask[Int(trie.tokenIDs[t])] = true }
                i += 1
            }
        }
        }
        }
    }
}
