import Foundation
import JSON

/// The byte-level pushdown automaton for JSON constrained by a compiled schema.
///
/// A schema compiles to `rules` (one per schema node). The automaton's state is a stack of `Frame`s, one per
/// value being written (object, array, string, number...). `anyOf` makes it nondeterministic: a matcher keeps a
/// small set of stacks, and an `anyOf` frame forks into one stack per alternative on its first byte.
///
/// Output is compact: no whitespace anywhere. Object keys come in schema property order; an optional property
/// may be skipped, a required one never. Numbers are written without exponent, with at most 15 integer digits
/// and 6 fraction digits; every byte of a number keeps it completable within its bounds. Every state the
/// automaton can reach can still be completed, so generation under a mask never dead-ends.

// MARK: - Rules

struct NumberRule: Sendable, Equatable {
    /// 0 for integers.
    let fractionDigits: Int
    let integerDigits: Int
    /// Bounds scaled by 10^fractionDigits, inclusive.
    let lower: Int128?
    let upper: Int128?

    var scale: Int128 { power(fractionDigits) }
}

@inline(__always) func power(_ n: Int) -> Int128 {
    var p: Int128 = 1
    for _ in 0..<n { p *= 10 }
    return p
}

enum Rule: Sendable {
    /// Any JSON value (free-form `json_object` content).
    case any
    case anyObject
    case anyArray
    /// keyTrie: literal trie of every property's quoted key, terminals carrying the property index. When the
    /// properties before p are done, the keys of p...last[p] may come next (last[p] is the first required property
    /// at or after p, or the last one). values[i]: rule of property i; canClose[p]: no required property at or after p.
    /// One trie for all positions keeps an object of n optional properties linear in size (a trie per position was
    /// quadratic: 5,000 optional properties needed 12.5 million key copies).
    case object(keyTrie: Int32, values: [Int32], last: [Int32], canClose: [Bool])
    case array(item: Int32, min: Int32, max: Int32)
    /// dfa: index into `dfas`, or -1.
    case string(min: Int32, max: Int32, dfa: Int32)
    case number(NumberRule)
    /// One of a set of literal byte strings (enum, const, boolean, null).
    case literal(trie: Int32)
    case anyOf([Int32])
}

/// A trie of literal byte strings; `terminal[node]` is the literal's index or -1. Object key tries also keep, per
/// node, the sorted indices of the literals below it (`below`), to ask whether a node leads to a key of a range.
struct LiteralTrie: Sendable {
    var children: [[(byte: UInt8, node: Int32)]] = [[]]
    var terminal: [Int32] = [-1]
    var below: [[Int32]] = []

    init(_ literals: [[UInt8]], indexingSubtrees: Bool = false) {
        if indexingSubtrees { below = [[]] }
        for (index, bytes) in literals.enumerated() { insert(bytes, index: index) }
    }

    var isEmpty: Bool { children[0].isEmpty }

    /// Whether some literal with an index in `low...high` lies at or below `node` (needs `indexingSubtrees`).
    @inline(__always) func leads(_ node: Int32, to low: Int32, _ high: Int32) -> Bool {
        let indices = below[Int(node)]
        // First index >= low, by binary search; the lists are sorted because literals are inserted in index order.
        var lo = 0, hi = indices.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if indices[mid] < low { lo = mid + 1 } else { hi = mid }
        }
        return lo < indices.count && indices[lo] <= high
    }

    @inline(__always) func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        for c in children[Int(node)] where c.byte == byte { return c.node }
        return nil
    }
}

/// One value being written. Field meaning depends on the rule (see `JSONGrammar.advance`).
struct Frame: Hashable, Sendable {
    var rule: Int32
    var phase: UInt8 = 0
    /// Strings: pending UTF-8 continuation bytes. Numbers: 1 when negative.
    var small: UInt8 = 0
    var a: Int32 = 0
    var b: Int32 = 0
    var x: Int64 = 0
    var y: Int64 = 0

    init(rule: Int32, phase: UInt8 = 0) {
        self.rule = rule
        self.phase = phase
    }
}

typealias Stack = [Frame]

// MARK: - Compiled grammar

/// A schema compiled to automaton rules. Immutable; one per request (cheap to build).
final class JSONGrammar: Sendable {
    let rules: [Rule]
    let tries: [LiteralTrie]
    let dfas: [PatternDFA]
    let root: Int32
    /// Free-form values nest at most this deep (keeps `json_object` output finite).
    let maxDepth = 16

    // Fixed rules every grammar has, for free-form JSON.
    static let anyRule: Int32 = 0, anyObjectRule: Int32 = 1, anyArrayRule: Int32 = 2
    static let freeStringRule: Int32 = 3, freeNumberRule: Int32 = 4, keywordRule: Int32 = 5

    /// Compiles within `budget` (the same one the schema was read with, or a fresh one).
    init(schema: JSONSchema, budget: CompileBudget = CompileBudget()) throws {
        var builder = Builder(budget: budget, patterns: schema.patterns)
        let root = try builder.compile(schema.root)
        rules = builder.rules
        tries = builder.tries
        dfas = builder.dfas
        self.root = root
    }

    private struct Builder {
        let budget: CompileBudget
        /// Patterns compiled when the schema was read.
        let patterns: [String: PatternDFA]
        var rules: [Rule] = [.any, .anyObject, .anyArray, .string(min: 0, max: .max, dfa: -1),
                             .number(NumberRule(fractionDigits: 6, integerDigits: 15, lower: nil, upper: nil)), .literal(trie: 0)]
        var tries: [LiteralTrie] = [LiteralTrie(["true", "false", "null"].map { Array($0.utf8) })]
        var dfas: [PatternDFA] = []
        var dfaIndex: [String: Int32] = [:]

        init(budget: CompileBudget, patterns: [String: PatternDFA]) {
            self.budget = budget
            self.patterns = patterns
        }

        mutating func add(_ rule: Rule) throws -> Int32 {
            try budget.spend(1, at: "#")
            rules.append(rule)
            return Int32(rules.count - 1)
        }

        mutating func literal(_ values: [JSONValue]) throws -> Int32 {
            let literals = values.map { Array($0.compactText.utf8) }
            try budget.spend(literals.reduce(0) { $0 + $1.count }, at: "#")
            tries.append(LiteralTrie(literals))
            return try add(.literal(trie: Int32(tries.count - 1)))
        }

        mutating func compile(_ node: JSONSchema.Node) throws -> Int32 {
            switch node {
            case .any: return JSONGrammar.anyRule
            case .boolean: return try literal([.bool(true), .bool(false)])
            case .null: return try literal([.null])
            case .enumeration(let values): return try literal(values)
            case .anyOf(let options):
                let compiled = try options.map { try compile($0) }
                return compiled.count == 1 ? compiled[0] : try add(.anyOf(compiled))
            case .object(let properties, let additional):
                if properties.isEmpty && additional { return JSONGrammar.anyObjectRule }
                let values = try properties.map { try compile($0.schema) }
                let keys = properties.map { Array(JSONWriter.quoted($0.name).utf8) }
                try budget.spend(keys.reduce(0) { $0 + $1.count } * 2, at: "#")
                tries.append(LiteralTrie(keys, indexingSubtrees: true))
                // Scanning from the end: the first required property at or after p, and whether any is left.
                let n = properties.count
                var last = [Int32](repeating: -1, count: n + 1)
                var canClose = [Bool](repeating: true, count: n + 1)
                var nextRequired = n - 1
                for p in stride(from: n - 1, through: 0, by: -1) {
                    if properties[p].required { nextRequired = p }
                    last[p] = Int32(nextRequired)
                    canClose[p] = canClose[p + 1] && !properties[p].required
                }
                return try add(.object(keyTrie: Int32(tries.count - 1), values: values, last: last, canClose: canClose))
            case .array(let items, let minItems, let maxItems):
                let item = try compile(items)
                return try add(.array(item: item, min: Int32(minItems), max: Int32(clamping: maxItems ?? Int(Int32.max))))
            case .string(let minLength, let maxLength, let pattern):
                var dfa: Int32 = -1
                if let pattern {
                    if let index = dfaIndex[pattern] {
                        dfa = index
                    } else {
                        do {
                            dfas.append(try patterns[pattern] ?? PatternDFA(pattern, budget: budget, path: "#"))
                        } catch let error as PatternError {
                            throw SchemaError.unsupportedValue(keyword: "pattern", path: "#", reason: error.reason)
                        }
                        dfa = Int32(dfas.count - 1)
                        dfaIndex[pattern] = dfa
                    }
                }
                return try add(.string(min: Int32(minLength), max: Int32(clamping: maxLength ?? Int(Int32.max)), dfa: dfa))
            case .integer(let minimum, let maximum):
                let rule = NumberRule(fractionDigits: 0, integerDigits: 15, lower: minimum.map { Int128($0) }, upper: maximum.map { Int128($0) })
                try check(rule)
                return try add(.number(rule))
            case .number(let minimum, let maximum, let exclusiveMin, let exclusiveMax):
                let digits = 6
                let scale = Decimal(sign: .plus, exponent: digits, significand: 1)
                func scaled(_ d: Decimal, up: Bool, exclusive: Bool) -> Int128 {
                    var product = d * scale, rounded = Decimal()
                    NSDecimalRound(&rounded, &product, 0, up ? .up : .down)
                    var value = Int128(NSDecimalNumber(decimal: rounded).stringValue)!
                    if exclusive && rounded == product { value += up ? 1 : -1 }
                    return value
                }
                let rule = NumberRule(fractionDigits: digits, integerDigits: 15,
                                      lower: minimum.map { scaled($0, up: true, exclusive: exclusiveMin) },
                                      upper: maximum.map { scaled($0, up: false, exclusive: exclusiveMax) })
                try check(rule)
                return try add(.number(rule))
            }
        }

        func check(_ rule: NumberRule) throws {
            var positive = Frame(rule: 0), negative = Frame(rule: 0, phase: 1)
            negative.small = 1
            positive.phase = 1
            guard JSONGrammar.feasible(positive, rule) || JSONGrammar.feasible(negative, rule) else {
                throw SchemaError.invalidSchema(path: "#", reason: "no number with at most 15 integer digits lies within the bounds")
            }
        }
    }

    // MARK: Stepping

    /// Feeds one byte to `stack`, appending every resulting stack to `out` (none: rejected; several: anyOf).
    func advance(_ stack: inout Stack, _ byte: UInt8, _ out: inout [Stack]) {
        while true {
            guard var top = stack.last else { return }  // complete: nothing may follow
            let i = stack.count - 1
            switch rules[Int(top.rule)] {
            case .anyOf(let options):
                for option in options {
                    var fork = stack
                    fork[i] = Frame(rule: option)
                    advance(&fork, byte, &out)
                }
                return

            case .any:
                switch byte {
                case UInt8(ascii: "{"):
                    guard stack.count < maxDepth else { return }
                    stack[i] = Frame(rule: Self.anyObjectRule, phase: 1)
                case UInt8(ascii: "["):
                    guard stack.count < maxDepth else { return }
                    stack[i] = Frame(rule: Self.anyArrayRule, phase: 1)
                case UInt8(ascii: "\""): stack[i] = Frame(rule: Self.freeStringRule, phase: 1)
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): stack[i] = Frame(rule: Self.freeNumberRule); continue
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"): stack[i] = Frame(rule: Self.keywordRule); continue
                default: return
                }
                out.append(stack)
                return

            case .anyObject:
                switch (top.phase, byte) {
                case (0, UInt8(ascii: "{")): top.phase = 1
                case (1, UInt8(ascii: "}")), (3, UInt8(ascii: "}")): stack.removeLast(); out.append(stack); return
                case (1, UInt8(ascii: "\"")), (4, UInt8(ascii: "\"")):
                    top.phase = 2
                    stack[i] = top
                    stack.append(Frame(rule: Self.freeStringRule))
                    continue
                case (2, UInt8(ascii: ":")):
                    top.phase = 3
                    stack[i] = top
                    stack.append(Frame(rule: Self.anyRule))
                    out.append(stack)
                    return
                case (3, UInt8(ascii: ",")): top.phase = 4
                default: return
                }
                stack[i] = top
                out.append(stack)
                return

            case .anyArray:
                switch (top.phase, byte) {
                case (0, UInt8(ascii: "[")): top.phase = 1
                case (1, UInt8(ascii: "]")), (2, UInt8(ascii: "]")): stack.removeLast(); out.append(stack); return
                case (1, _):
                    top.phase = 2
                    stack[i] = top
                    stack.append(Frame(rule: Self.anyRule))
                    continue
                case (2, UInt8(ascii: ",")):
                    stack.append(Frame(rule: Self.anyRule))
                    out.append(stack)
                    return
                default: return
                }
                stack[i] = top
                out.append(stack)
                return

            case .object(let keyTrie, let values, let last, let canClose):
                let trie = tries[Int(keyTrie)]
                switch top.phase {
                case 0:
                    guard byte == UInt8(ascii: "{") else { return }
                    top.phase = 1
                case 1, 5:
                    if top.phase == 1 && byte == UInt8(ascii: "}") {
                        guard canClose[Int(top.a)] else { return }
                        stack.removeLast()
                        out.append(stack)
                        return
                    }
                    guard let node = trie.child(0, byte), trie.leads(node, to: top.a, last[Int(top.a)]) else { return }
                    top.phase = 2
                    top.b = node
                case 2:
                    guard let node = trie.child(top.b, byte), trie.leads(node, to: top.a, last[Int(top.a)]) else { return }
                    let property = trie.terminal[Int(node)]
                    if property >= 0 {
                        top.phase = 3
                        top.a = property + 1
                        top.b = property
                    } else {
                        top.b = node
                    }
                case 3:
                    guard byte == UInt8(ascii: ":") else { return }
                    top.phase = 4
                    stack[i] = top
                    stack.append(Frame(rule: values[Int(top.b)]))
                    out.append(stack)
                    return
                default:  // 4: after a value
                    if byte == UInt8(ascii: ",") && Int(top.a) < values.count {
                        top.phase = 5
                    } else if byte == UInt8(ascii: "}") && canClose[Int(top.a)] {
                        stack.removeLast()
                        out.append(stack)
                        return
                    } else {
                        return
                    }
                }
                stack[i] = top
                out.append(stack)
                return

            case .array(let item, let minimum, let maximum):
                switch top.phase {
                case 0:
                    guard byte == UInt8(ascii: "[") else { return }
                    top.phase = 1
                case 1:
                    if byte == UInt8(ascii: "]") {
                        guard minimum == 0 else { return }
                        stack.removeLast()
                        out.append(stack)
                        return
                    }
                    guard maximum > 0 else { return }
                    top.phase = 2
                    top.a = 1
                    stack[i] = top
                    stack.append(Frame(rule: item))
                    continue
                default:
                    if byte == UInt8(ascii: ",") && top.a < maximum {
                        top.a += 1
                        stack[i] = top
                        stack.append(Frame(rule: item))
                        out.append(stack)
                        return
                    }
                    guard byte == UInt8(ascii: "]") && top.a >= minimum else { return }
                    stack.removeLast()
                    out.append(stack)
                    return
                }
                stack[i] = top
                out.append(stack)
                return

            case .string(let minimum, let maximum, let dfa):
                guard stringStep(&top, byte, minimum: minimum, maximum: maximum, dfa: dfa) else { return }
                if top.phase == 255 { stack.removeLast() } else { stack[i] = top }
                out.append(stack)
                return

            case .number(let rule):
                switch numberStep(&top, byte, rule) {
                case .rejected: return
                case .consumed:
                    stack[i] = top
                    out.append(stack)
                    return
                case .ended:
                    stack.removeLast()
                    continue
                }

            case .literal(let trieIndex):
                let trie = tries[Int(trieIndex)]
                if let node = trie.child(top.a, byte) {
                    if trie.terminal[Int(node)] >= 0 && trie.children[Int(node)].isEmpty {
                        stack.removeLast()
                    } else {
                        top.a = node
                        stack[i] = top
                    }
                    out.append(stack)
                    return
                }
                guard trie.terminal[Int(top.a)] >= 0 else { return }
                stack.removeLast()
                continue
            }
        }
    }

    /// A token begins in these states: a string whose content is being written (without a pattern, with a
    /// `maxLength`) counts it. Once a string has begun `maxLength` tokens, the next one may only close it, so
    /// `maxLength` bounds the string's tokens as well as its characters — a model that writes one byte per token
    /// still closes it in time — and the tokens an answer can take follow from its schema (`AnswerBudget`).
    func tokenStarts(_ stacks: [Stack]) -> [Stack] {
        stacks.map { stack in
            guard var top = stack.last, top.phase >= 1, top.phase <= 3,
                  case .string(_, let maximum, let dfa) = rules[Int(top.rule)], dfa < 0, maximum != .max else { return stack }
            var counted = stack
            top.y += 1
            counted[counted.count - 1] = top
            return counted
        }
    }

    /// String phases: 0 before the opening quote, 1 content, 2 after `\`, 3 inside `\uXXXX` (x = digits seen);
    /// 255 closed. a = characters so far, b = DFA state, small = pending UTF-8 continuation bytes, y = tokens that
    /// began inside the string (`tokenStarts`).
    @inline(__always)
    func stringStep(_ f: inout Frame, _ byte: UInt8, minimum: Int32, maximum: Int32, dfa: Int32) -> Bool {
        switch f.phase {
        case 0:
            guard byte == UInt8(ascii: "\"") else { return false }
            f.phase = 1
            return true
        case 1:
            if byte == UInt8(ascii: "\"") {
                guard f.small == 0 && f.a >= minimum else { return false }
                if dfa >= 0 && !dfas[Int(dfa)].accepting[Int(f.b)] { return false }
                f.phase = 255
                return true
            }
            if dfa >= 0 {
                let next = dfas[Int(dfa)].next(f.b, byte)
                guard next >= 0 else { return false }
                f.b = next
                if byte & 0xC0 != 0x80 { f.a += 1 }
                return true
            }
            // A new character (not the rest of one) may start only while the string has tokens left: `maxLength`
            // bounds its tokens as well as its characters (see `tokenStarts`), unless `minLength` is not reached yet.
            if f.small == 0 && maximum != .max && f.y > Int64(maximum) && f.a >= minimum { return false }
            if byte == UInt8(ascii: "\\") {
                guard f.small == 0 && f.a < maximum else { return false }
                f.phase = 2
                return true
            }
            guard byte >= 0x20 else { return false }
            return utf8Step(&f.small, &f.a, byte, maximum: maximum)
        case 2:
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                f.a += 1
                f.phase = 1
            case UInt8(ascii: "u"):
                f.phase = 3
                f.x = 0
            default: return false
            }
            return true
        default:
            // \uXXXX; the first digit may not be d/D, which keeps surrogates (lone or paired) out.
            let isHex = (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x66)
            guard isHex, !(f.x == 0 && byte | 0x20 == 0x64) else { return false }
            f.x += 1
            if f.x == 4 { f.a += 1; f.phase = 1 }
            return true
        }
    }

    enum NumberOutcome { case consumed, rejected, ended }

    /// Number phases: 0 start, 1 after '-', 2 integer digits, 3 after a leading 0, 4 after '.', 5 fraction digits.
    /// a/b = integer/fraction digit counts, x/y their values, small = 1 when negative.
    @inline(__always)
    func numberStep(_ f: inout Frame, _ byte: UInt8, _ rule: NumberRule) -> NumberOutcome {
        let isDigit = byte >= 0x30 && byte <= 0x39
        let digit = Int64(byte) - 0x30
        var next = f
        switch f.phase {
        case 0 where byte == UInt8(ascii: "-"):
            next.phase = 1
            next.small = 1
        case 0 where isDigit, 1 where isDigit:
            next.phase = digit == 0 ? 3 : 2
            next.a = 1
            next.x = digit
        case 2 where isDigit:
            guard f.a < rule.integerDigits else { return end(f, rule) }
            next.a += 1
            next.x = f.x * 10 + digit
        case 2 where byte == UInt8(ascii: "."), 3 where byte == UInt8(ascii: "."):
            guard rule.fractionDigits > 0 else { return end(f, rule) }
            next.phase = 4
        case 4 where isDigit, 5 where isDigit:
            guard f.b < rule.fractionDigits else { return end(f, rule) }
            next.phase = 5
            next.b += 1
            next.y = f.y * 10 + digit
        case 2, 3, 5: return end(f, rule)
        default: return .rejected
        }
        guard Self.feasible(next, rule) else { return .rejected }
        f = next
        return .consumed
    }

    @inline(__always) func end(_ f: Frame, _ rule: NumberRule) -> NumberOutcome {
        Self.closeable(f, rule) ? .ended : .rejected
    }

    /// The scaled value of a number frame (integer part and fraction digits so far).
    static func value(_ f: Frame, _ rule: NumberRule) -> Int128 {
        let magnitude = Int128(f.x) * rule.scale + Int128(f.y) * power(rule.fractionDigits - Int(f.b))
        return f.small == 1 ? -magnitude : magnitude
    }

    static func closeable(_ f: Frame, _ rule: NumberRule) -> Bool {
        guard f.phase == 2 || f.phase == 3 || f.phase == 5 else { return false }
        let v = value(f, rule)
        return (rule.lower.map { v >= $0 } ?? true) && (rule.upper.map { v <= $0 } ?? true)
    }

    /// Whether some completion of this number prefix lies within the bounds: the completions form a few
    /// ranges of scaled integers [start, end), each checked against the bounds.
    static func feasible(_ f: Frame, _ rule: NumberRule) -> Bool {
        if rule.lower == nil && rule.upper == nil { return true }
        // Magnitude bounds for this sign.
        let big = power(rule.integerDigits + rule.fractionDigits + 2)
        var low: Int128, high: Int128
        if f.small == 1 {
            low = rule.upper.map { -$0 } ?? 0
            high = rule.lower.map { -$0 } ?? big
        } else {
            low = rule.lower ?? 0
            high = rule.upper ?? big
        }
        low = max(low, 0)
        func hits(_ start: Int128, _ end: Int128) -> Bool { max(start, low) <= min(end - 1, high) }
        let scale = rule.scale
        switch f.phase {
        case 0, 1: return hits(0, power(rule.integerDigits) * scale)
        case 3: return hits(0, scale)
        case 4: return hits(Int128(f.x) * scale, Int128(f.x + 1) * scale)
        case 5:
            let v = Int128(f.x) * scale + Int128(f.y) * power(rule.fractionDigits - Int(f.b))
            return hits(v, v + power(rule.fractionDigits - Int(f.b)))
        default:  // 2: integer digits
            let x = Int128(f.x)
            var p: Int128 = 1
            for _ in 0...(rule.integerDigits - Int(f.a)) {
                if hits(x * p * scale, (x + 1) * p * scale) { return true }
                p *= 10
            }
            return false
        }
    }

    /// Whether the stack is a finished document (or a top-level number/literal that may end here).
    func accepts(_ stack: Stack) -> Bool {
        if stack.isEmpty { return true }
        guard stack.count == 1, let top = stack.last else { return false }
        switch rules[Int(top.rule)] {
        case .number(let rule): return Self.closeable(top, rule)
        case .literal(let trie): return tries[Int(trie)].terminal[Int(top.a)] >= 0
        default: return false
        }
    }
}

/// Lenient UTF-8 inside strings: lead bytes set the number of continuation bytes that must follow; a
/// character counts once, at its lead byte (maxLength counts characters).
@inline(__always)
func utf8Step(_ pending: inout UInt8, _ count: inout Int32, _ byte: UInt8, maximum: Int32) -> Bool {
    if pending > 0 {
        guard byte & 0xC0 == 0x80 else { return false }
        pending -= 1
        return true
    }
    guard count < maximum else { return false }
    switch byte {
    case 0..<0x80: break
    case 0xC2...0xDF: pending = 1
    case 0xE0...0xEF: pending = 2
    case 0xF0...0xF4: pending = 3
    default: return false
    }
    count += 1
    return true
}

extension LiteralTrie {
    /// Inserts a literal; in an indexed trie (`below` in use) its index is also recorded on every node of its path.
    mutating func insert(_ bytes: [UInt8], index: Int) {
        let indexed = !below.isEmpty
        var node = 0
        if indexed { below[0].append(Int32(index)) }
        for b in bytes {
            if let next = children[node].first(where: { $0.byte == b }) {
                node = Int(next.node)
            } else {
                children.append([])
                terminal.append(-1)
                if indexed { below.append([]) }
                children[node].append((b, Int32(children.count - 1)))
                node = children.count - 1
            }
            if indexed { below[node].append(Int32(index)) }
        }
        if terminal[node] < 0 { terminal[node] = Int32(index) }
    }
}
