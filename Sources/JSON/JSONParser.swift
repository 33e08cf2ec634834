import Foundation

/// The one JSON parser: RFC 8259 over UTF-8 bytes in a single pass, with limits on what a document may cost.
///
/// Request bodies, schemas, model folders' configs and tokenizer.json all come through here, so the limits are
/// the defence against documents that are small on the wire and large in memory or time: nesting depth (the
/// parser recurses), input size, and the number of values (each costs a few dozen bytes in memory, so a 40 MB
/// `[0,0,0,…]` would otherwise become half a gigabyte). Strings must be valid UTF-8; `\u` escapes must be hex;
/// an unpaired surrogate escape becomes U+FFFD and the escape after it is read on its own. A leading UTF-8
/// byte-order mark is skipped. Duplicate object keys are refused unless the limits allow them, so no two
/// readers of one document can disagree about which value a key has.
public enum JSONParser {
    public struct Limits: Sendable, Equatable {
        /// Deepest nesting of arrays and objects (the top-level value is depth 1).
        public var maxDepth: Int
        /// Largest input, in bytes.
        public var maxBytes: Int
        /// Most values (scalars, arrays and objects, members' values included) in one document.
        public var maxValues: Int
        /// Refuse objects that name one key twice.
        public var rejectDuplicateKeys: Bool

        public init(maxDepth: Int = 512, maxBytes: Int = .max, maxValues: Int = .max, rejectDuplicateKeys: Bool = true) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
            self.maxValues = maxValues
            self.rejectDuplicateKeys = rejectDuplicateKeys
        }

        /// Generous limits for trusted files (configs, tokenizer.json): deep enough for anything real.
        public static let files = Limits()
    }

    /// Parses one complete document (whitespace around it allowed).
    public static func parse(_ data: Data, limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = data.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try parse(raw.bindMemory(to: UInt8.self), limits: limits) }
        }
        return try result.get()
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONParseError) in try parse(buffer, limits: limits) }
        }
        return try result.get()
    }

    public static func parse(_ text: String, limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        guard bytes.count <= limits.maxBytes else {
            throw JSONParseError(.tooLarge(limit: limits.maxBytes), offset: limits.maxBytes, in: bytes)
        }
        var reader = ByteReader(bytes: bytes, limits: limits)
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { reader.index = 3 }
        reader.skipWhitespace()
        let value = try reader.value(depth: 1)
        reader.skipWhitespace()
        guard reader.index == bytes.count else { throw reader.error(.syntax("unexpected data after the JSON value")) }
        return value
    }

    /// Parses the value that starts at `start` and returns it with the offset just after it; whatever follows
    /// is left alone (finding a JSON object inside prose).
    public static func parsePrefix(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int,
                                   limits: Limits = Limits()) throws(JSONParseError) -> (value: JSONValue, end: Int) {
        var reader = ByteReader(bytes: bytes, limits: limits)
        reader.index = start
        let value = try reader.value(depth: 1)
        return (value, reader.index)
    }
}

/// Why a document was refused, with the byte offset (and line and column) where the parser stopped.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case syntax(String)
        case invalidUTF8
        case duplicateKey(String)
        case tooDeep(limit: Int)
        case tooLarge(limit: Int)
        case tooManyValues(limit: Int)
    }

    public let kind: Kind
    public let offset: Int
    public let line: Int
    public let column: Int

    init(_ kind: Kind, offset: Int, in bytes: UnsafeBufferPointer<UInt8>) {
        self.kind = kind
        self.offset = offset
        var line = 1, column = 1
        for i in 0..<min(offset, bytes.count) {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
        }
        self.line = line
        self.column = column
    }

    /// Whether a limit (rather than malformed text) refused the document.
    public var isLimit: Bool {
        switch kind {
        case .tooDeep, .tooLarge, .tooManyValues: true
        default: false
        }
    }

    public var reason: String {
        switch kind {
        case .syntax(let what): what
        case .invalidUTF8: "a string is not valid UTF-8"
        case .duplicateKey(let key): "the key \"\(key)\" appears twice in one object"
        case .tooDeep(let limit): "arrays and objects nest deeper than \(limit) levels"
        case .tooLarge(let limit): "the document is larger than \(limit) bytes"
        case .tooManyValues(let limit): "the document has more than \(limit) values"
        }
    }

    public var description: String { "\(reason) (line \(line), column \(column), byte \(offset))" }
}

// MARK: - The reader

private struct ByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    let limits: Limits
    var index = 0
    var values = 0

    typealias Limits = JSONParser.Limits

    init(bytes: UnsafeBufferPointer<UInt8>, limits: Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    func error(_ kind: JSONParseError.Kind) -> JSONParseError { JSONParseError(kind, offset: index, in: bytes) }

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        values += 1
        guard values <= limits.maxValues else { throw error(.tooManyValues(limit: limits.maxValues)) }
        guard index < bytes.count else { throw error(.syntax("unexpected end of data; a value was expected")) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error(.syntax("unexpected character; a value was expected"))
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error(.syntax("unexpected end of data")) }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] { throw error(.syntax("invalid literal")) }
        index += count
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= limits.maxDepth else { throw error(.tooDeep(limit: limits.maxDepth)) }
        index += 1  // {
        var members: [JSONObject.Member] = []
        var seen: Set<String>?
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(JSONObject(members)) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error(.syntax("expected a string key")) }
            let keyStart = index
            let key = try string()
            if limits.rejectDuplicateKeys {
                // A linear scan for small objects, a set once they grow (vocabularies have 150k keys).
                if members.count < 16 {
                    if members.contains(where: { $0.key == key }) { index = keyStart; throw error(.duplicateKey(key)) }
                } else {
                    if seen == nil { seen = Set(members.map(\.key)) }
                    guard seen!.insert(key).inserted else { index = keyStart; throw error(.duplicateKey(key)) }
                }
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error(.syntax("expected ':' after a key")) }
            index += 1
            skipWhitespace()
            members.append((key, try value(depth: depth + 1)))
            skipWhitespace()
            guard index < bytes.count else { throw error(.syntax("unexpected end of data inside an object")) }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(JSONObject(members)) }
            throw error(.syntax("expected ',' or '}'"))
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= limits.maxDepth else { throw error(.tooDeep(limit: limits.maxDepth)) }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw error(.syntax("unexpected end of data inside an array")) }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw error(.syntax("expected ',' or ']'"))
        }
    }

    mutating func number() throws(JSONParseError) -> JSONNumber {
        let start = index
        let end = NumberScanner.scan(bytes, from: start)
        guard end > start else {
            index = -end
            throw error(.syntax("invalid number"))
        }
        index = end
        return JSONNumber(validated: String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
    }

    mutating func string() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes; the bytes become the string after one validation pass.
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) else {
                    index = start
                    throw error(.invalidUTF8)
                }
                index += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error(.syntax("control character in a string; escape it")) }
            index += 1
        }
        var buffer = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                guard let s = String(validating: buffer, as: UTF8.self) else {
                    index = start
                    throw error(.invalidUTF8)
                }
                index += 1
                return s
            }
            if b < 0x20 { throw error(.syntax("control character in a string; escape it")) }
            if b != UInt8(ascii: "\\") {
                buffer.append(b)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(e)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                // A high surrogate pairs only with a following \uDC00–\uDFFF. Anything else leaves it unpaired (it
                // becomes U+FFFD) and the next escape is read on its own. The range is checked before subtracting:
                // `\ud800\u0041` once trapped on UInt32 underflow and took the server down.
                if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count,
                   bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    let saved = index
                    index += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        index = saved
                    }
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                buffer.append(contentsOf: UTF8.encode(scalar)!)
            default:
                index -= 1
                throw error(.syntax("invalid escape in a string"))
            }
        }
        throw error(.syntax("unterminated string"))
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error(.syntax("truncated \\u escape")) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error(.syntax("\\u must be followed by four hex digits"))
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}

/// The JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
enum NumberScanner {
    /// The offset just past the number that starts at `start`, or the negated offset of the first bad byte.
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var i = start
        @inline(__always) func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { return -i }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if isDigit(i) { return -i }  // no leading zeros
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { return -i }
            while isDigit(i) { i += 1 }
        }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { return -i }
            while isDigit(i) { i += 1 }
        }
        return i
    }
}

extension JSONValue {
    /// Parses UTF-8 JSON text with the given limits (see `JSONParser`).
    public static func parse(_ data: Data, limits: JSONParser.Limits = JSONParser.Limits()) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(data, limits: limits)
    }

    public static func parse(_ text: String, limits: JSONParser.Limits = JSONParser.Limits()) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(text, limits: limits)
    }
}
