/// A `pattern` of the supported regular-expression subset compiled to a byte-level DFA.
///
/// Subset: literal characters (any UTF-8), `.`, classes `[a-z0-9_]` / `[^…]` of ASCII characters, `\d \w \s
/// \D \W \S`, escaped punctuation (`\.`, `\-`, …), groups `(…)` / `(?:…)`, alternation `|`, quantifiers
/// `* + ? {n} {n,} {n,m}` (lazy `?` suffixes accepted: they do not change what matches), and `^` / `$` at the
/// ends. Anything else (backreferences, lookaround, `\b`, `\p{…}`, anchors inside) is refused.
///
/// JSON Schema patterns search anywhere in the string; we generate strings the whole pattern matches, which
/// also satisfy the search. Generated strings never need JSON escapes: `"`, `\` and control characters are
/// left out of `.`, classes and their complements (`\s` is the space only), and a pattern that requires one
/// of them is refused.
struct PatternDFA: Sendable, Equatable {
    /// transitions[state * 256 + byte] = next state, or -1.
    let transitions: [Int32]
    let accepting: [Bool]
    let start: Int32 = 0

    func next(_ state: Int32, _ byte: UInt8) -> Int32 { transitions[Int(state) * 256 + Int(byte)] }

    /// Compiles within the default limits (tests, fixed formats).
    init(_ pattern: String) throws {
        try self.init(pattern, budget: CompileBudget(), path: "#")
    }

    /// Compiles within `budget`: NFA states, DFA states and the work of subset construction all count, so nested
    /// counted repetitions (`((a{1,100}){1,100}){1,100}`) are refused in milliseconds rather than compiled for minutes.
    /// Throws `PatternError` for syntax outside the subset, `SchemaError.tooComplex` for limits.
    init(_ pattern: String, budget: CompileBudget, path: String) throws {
        var parser = RegexParser(bytes: Array(pattern.utf8))
        let tree = try parser.parseAll()
        var nfa = NFA(budget: budget, path: path)
        let fragment = try nfa.build(tree)
        nfa.accept = fragment.end
        (transitions, accepting) = try nfa.determinize(start: fragment.start)
        if !accepting.contains(true) {
            throw PatternError(reason: "the pattern matches no string that can be written without escapes")
        }
    }
}

struct PatternError: Error, Equatable {
    let reason: String
}

/// Bytes a pattern may produce unescaped inside a JSON string: printable ASCII except `"` and `\`.
private let writableASCII: Set<UInt8> = Set((0x20...0x7E).map { UInt8($0) }).subtracting([0x22, 0x5C])

private indirect enum Regex {
    case bytes(Set<UInt8>)
    case sequence([Regex])
    case alternation([Regex])
    case repeated(Regex, min: Int, max: Int?)
}

private struct RegexParser {
    let bytes: [UInt8]
    var index = 0

    func fail(_ why: String) -> PatternError { PatternError(reason: why) }

    mutating func parseAll() throws -> Regex {
        if index < bytes.count, bytes[index] == UInt8(ascii: "^") { index += 1 }
        let tree = try alternation()
        guard index == bytes.count else { throw fail("unexpected ')' at offset \(index)") }
        return tree
    }

    mutating func alternation() throws -> Regex {
        var options = [try sequence()]
        while index < bytes.count, bytes[index] == UInt8(ascii: "|") {
            index += 1
            options.append(try sequence())
        }
        return options.count == 1 ? options[0] : .alternation(options)
    }

    mutating func sequence() throws -> Regex {
        var items: [Regex] = []
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "|") || b == UInt8(ascii: ")") { break }
            if b == UInt8(ascii: "$") {
                index += 1
                guard index == bytes.count || bytes[index] == UInt8(ascii: "|") || bytes[index] == UInt8(ascii: ")") else {
                    throw fail("'$' is only supported at the end")
                }
                continue
            }
            if b == UInt8(ascii: "^") { throw fail("'^' is only supported at the start") }
            var atom = try self.atom()
            atom = try quantified(atom)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    mutating func quantified(_ atom: Regex) throws -> Regex {
        guard index < bytes.count else { return atom }
        var result: Regex
        switch bytes[index] {
        case UInt8(ascii: "*"): index += 1; result = .repeated(atom, min: 0, max: nil)
        case UInt8(ascii: "+"): index += 1; result = .repeated(atom, min: 1, max: nil)
        case UInt8(ascii: "?"): index += 1; result = .repeated(atom, min: 0, max: 1)
        case UInt8(ascii: "{"):
            let save = index
            index += 1
            guard let low = number() else { index = save; throw fail("'{' must start a {n}, {n,} or {n,m} quantifier") }
            var high: Int? = low
            if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                index += 1
                high = number()
            }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "}") else { throw fail("unterminated {n,m} quantifier") }
            index += 1
            if let high, high < low { throw fail("quantifier {\(low),\(high)} has max < min") }
            guard low <= 100, (high ?? 0) <= 100 else { throw fail("quantifier counts above 100") }
            result = .repeated(atom, min: low, max: high)
        default: return atom
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "?") { index += 1 }  // lazy: same language
        if index < bytes.count, [UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "{")].contains(bytes[index]) {
            throw fail("possessive or stacked quantifiers")
        }
        return result
    }

    mutating func number() -> Int? {
        let start = index
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
        guard index > start, index - start < 6 else { return nil }
        return Int(String(decoding: bytes[start..<index], as: UTF8.self))
    }

    mutating func atom() throws -> Regex {
        let b = bytes[index]
        index += 1
        switch b {
        case UInt8(ascii: "("):
            if index < bytes.count, bytes[index] == UInt8(ascii: "?") {
                guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: ":") else {
                    throw fail("lookaround and named groups ('(?') are not supported")
                }
                index += 2
            }
            let inner = try alternation()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ")") else { throw fail("unbalanced '('") }
            index += 1
            return inner
        case UInt8(ascii: "["): return .bytes(try characterClass())
        case UInt8(ascii: "."): return .bytes(writableASCII)
        case UInt8(ascii: "\\"): return .bytes(try escape(inClass: false))
        case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"), UInt8(ascii: "{"):
            throw fail("quantifier without something to repeat at offset \(index - 1)")
        default:
            if b < 0x80 {
                guard writableASCII.contains(b) else { throw fail("the pattern requires a character JSON must escape") }
                return .bytes([b])
            }
            // A multi-byte UTF-8 character: its bytes in sequence.
            var sequence: [Regex] = [.bytes([b])]
            while index < bytes.count, bytes[index] & 0xC0 == 0x80 { sequence.append(.bytes([bytes[index]])); index += 1 }
            return .sequence(sequence)
        }
    }

    /// `\d`-style classes and escaped literals.
    mutating func escape(inClass: Bool) throws -> Set<UInt8> {
        guard index < bytes.count else { throw fail("pattern ends with '\\'") }
        let e = bytes[index]
        index += 1
        let digits = Set((0x30...0x39).map { UInt8($0) })
        let word = digits.union((0x41...0x5A).map { UInt8($0) }).union((0x61...0x7A).map { UInt8($0) }).union([0x5F])
        switch e {
        case UInt8(ascii: "d"): return digits
        case UInt8(ascii: "w"): return word
        case UInt8(ascii: "s"): return [0x20]
        case UInt8(ascii: "D"): return writableASCII.subtracting(digits)
        case UInt8(ascii: "W"): return writableASCII.subtracting(word)
        case UInt8(ascii: "S"): return writableASCII.subtracting([0x20])
        default:
            let punctuation = Array(".-+*?()[]{}|^$/,:#&~!=<>'@%;_ ".utf8)
            guard punctuation.contains(e) else {
                if e == UInt8(ascii: "\\") || e == UInt8(ascii: "\"") { throw fail("the pattern requires a character JSON must escape") }
                throw fail("escape '\\\(Character(Unicode.Scalar(e)))' is not supported")
            }
            return [e]
        }
    }

    mutating func characterClass() throws -> Set<UInt8> {
        var negated = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "^") { negated = true; index += 1 }
        var set = Set<UInt8>()
        var first = true
        while true {
            guard index < bytes.count else { throw fail("unterminated '['") }
            var b = bytes[index]
            if b == UInt8(ascii: "]") && !first { index += 1; break }
            first = false
            index += 1
            if b >= 0x80 { throw fail("non-ASCII characters inside [...] are not supported") }
            if b == UInt8(ascii: "\\") {
                let members = try escape(inClass: true)
                guard members.count == 1 else { set.formUnion(members); continue }
                b = members.first!
            } else if b == UInt8(ascii: "[") && index < bytes.count && bytes[index] == UInt8(ascii: ":") {
                throw fail("POSIX classes [:...:] are not supported")
            }
            // A range a-z (a '-' first or last is literal).
            if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "-"), bytes[index + 1] != UInt8(ascii: "]") {
                index += 1
                var high = bytes[index]
                index += 1
                if high == UInt8(ascii: "\\") {
                    let members = try escape(inClass: true)
                    guard members.count == 1 else { throw fail("a class like \\d cannot end a range") }
                    high = members.first!
                }
                guard high < 0x80 else { throw fail("non-ASCII characters inside [...] are not supported") }
                guard high >= b else { throw fail("reversed range in [...]") }
                set.formUnion((b...high).map { $0 })
            } else {
                set.insert(b)
            }
        }
        return negated ? writableASCII.subtracting(set) : set.intersection(writableASCII)
    }
}

/// Thompson construction, then subset construction to a DFA over bytes.
private struct NFA {
    let budget: CompileBudget
    let path: String
    /// Per state: epsilon edges and byte edges.
    var epsilon: [[Int]] = []
    var edges: [[(Set<UInt8>, Int)]] = []
    var accept = 0

    init(budget: CompileBudget, path: String) {
        self.budget = budget
        self.path = path
    }

    /// Thompson states allowed: ten per DFA state the limits allow.
    var maxNFAStates: Int { budget.limits.maxPatternStates * 10 }

    mutating func newState() -> Int {
        epsilon.append([])
        edges.append([])
        return epsilon.count - 1
    }

    mutating func build(_ r: Regex) throws -> (start: Int, end: Int) {
        guard epsilon.count < maxNFAStates else {
            throw SchemaError.tooComplex(limit: "max_pattern_states", value: budget.limits.maxPatternStates, path: path,
                                         reason: "the pattern's repetitions expand to more than \(maxNFAStates) automaton states")
        }
        try budget.spend(1, at: path)
        switch r {
        case .bytes(let set):
            let s = newState(), e = newState()
            edges[s].append((set, e))
            return (s, e)
        case .sequence(let items):
            let s = newState()
            var end = s
            for item in items {
                let f = try build(item)
                epsilon[end].append(f.start)
                end = f.end
            }
            return (s, end)
        case .alternation(let options):
            let s = newState(), e = newState()
            for option in options {
                let f = try build(option)
                epsilon[s].append(f.start)
                epsilon[f.end].append(e)
            }
            return (s, e)
        case .repeated(let inner, let low, let high):
            let s = newState()
            var end = s
            for _ in 0..<low {
                let f = try build(inner)
                epsilon[end].append(f.start)
                end = f.end
            }
            if let high {
                let e = newState()
                epsilon[end].append(e)
                for _ in low..<high {
                    let f = try build(inner)
                    epsilon[end].append(f.start)
                    end = f.end
                    epsilon[end].append(e)
                }
                return (s, e)
            }
            let f = try build(inner)
            epsilon[end].append(f.start)
            epsilon[f.end].append(f.start)
            let e = newState()
            epsilon[end].append(e)
            epsilon[f.end].append(e)
            return (s, e)
        }
    }

    func closure(_ states: [Int]) throws -> [Int] {
        var seen = Set(states)
        var work = states
        while let s = work.popLast() {
            for t in epsilon[s] where seen.insert(t).inserted { work.append(t) }
        }
        try budget.spend(seen.count, at: path)
        return seen.sorted()
    }

    func determinize(start: Int) throws -> ([Int32], [Bool]) {
        let maxStates = budget.limits.maxPatternStates
        var ids: [[Int]: Int] = [:]
        var sets: [[Int]] = []
        func id(_ set: [Int]) throws -> Int {
            if let i = ids[set] { return i }
            try budget.spend(set.count, at: path)  // hashing the set
            ids[set] = sets.count
            sets.append(set)
            return sets.count - 1
        }
        _ = try id(try closure([start]))
        var transitions: [Int32] = []
        var current = 0
        while current < sets.count {
            guard sets.count <= maxStates else {
                throw SchemaError.tooComplex(limit: "max_pattern_states", value: maxStates, path: path,
                                             reason: "the pattern needs more than \(maxStates) automaton states")
            }
            var row = [Int32](repeating: -1, count: 256)
            var targets: [UInt8: [Int]] = [:]
            for s in sets[current] {
                for (set, t) in edges[s] {
                    try budget.spend(set.count, at: path)
                    for b in set { targets[b, default: []].append(t) }
                }
            }
            for (b, ts) in targets { row[Int(b)] = Int32(try id(try closure(ts))) }
            transitions += row
            current += 1
        }
        var accepting = sets.map { $0.contains(accept) }
        // Trim states that cannot reach acceptance, so every live prefix can still be completed: a backward search
        // from the accepting states over reversed transitions (linear in the table).
        var predecessors = [[Int]](repeating: [], count: sets.count)
        for s in 0..<sets.count {
            for b in 0..<256 where transitions[s * 256 + b] >= 0 { predecessors[Int(transitions[s * 256 + b])].append(s) }
        }
        try budget.spend(transitions.count, at: path)
        var live = accepting
        var work = (0..<sets.count).filter { live[$0] }
        while let s = work.popLast() {
            for p in predecessors[s] where !live[p] {
                live[p] = true
                work.append(p)
            }
        }
        for i in transitions.indices where transitions[i] >= 0 && !live[Int(transitions[i])] { transitions[i] = -1 }
        if !live[0] { accepting = accepting.map { _ in false } }
        return (transitions, accepting)
    }
}
