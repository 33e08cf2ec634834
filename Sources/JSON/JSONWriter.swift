/// The one JSON writer. Compact by default (what constrained decoding produces and what is stored), optionally
/// indented and/or with keys sorted (stable golden files and exports). Strings escape `"`, `\` and control
/// characters (`\n`, `\t`, … or `\u00XX`) and keep everything else as raw UTF-8; `/` is not escaped. Numbers are
/// written as they were read or made.
public struct JSONWriter: Sendable {
    public var sortedKeys = false
    /// Indentation per level; nil writes everything on one line without spaces.
    public var indent: String?

    public init(sortedKeys: Bool = false, indent: String? = nil) {
        self.sortedKeys = sortedKeys
        self.indent = indent
    }

    public func string(_ value: JSONValue) -> String {
        var out = ""
        write(value, to: &out, level: 0)
        return out
    }

    public func write(_ value: JSONValue, to out: inout String, level: Int = 0) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.text
        case .string(let s): JSONWriter.writeQuoted(s, to: &out)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += "," }
                newline(&out, level + 1)
                write(element, to: &out, level: level + 1)
            }
            newline(&out, level)
            out += "]"
        case .object(let object):
            if object.isEmpty { out += "{}"; return }
            out += "{"
            let members = sortedKeys ? object.members.sorted { $0.key < $1.key } : object.members
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                newline(&out, level + 1)
                JSONWriter.writeQuoted(member.key, to: &out)
                out += indent == nil ? ":" : ": "
                write(member.value, to: &out, level: level + 1)
            }
            newline(&out, level)
            out += "}"
        }
    }

    private func newline(_ out: inout String, _ level: Int) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    /// A JSON string literal for `s`.
    public static func quoted(_ s: String) -> String {
        var out = ""
        writeQuoted(s, to: &out)
        return out
    }

    public static func writeQuoted(_ s: String, to out: inout String) {
        out += "\""
        var plainStart = s.utf8.startIndex
        let utf8 = s.utf8
        var i = utf8.startIndex
        // Runs of bytes that need no escape are copied in one piece.
        while i != utf8.endIndex {
            let b = utf8[i]
            let escape: String?
            switch b {
            case UInt8(ascii: "\""): escape = "\\\""
            case UInt8(ascii: "\\"): escape = "\\\\"
            case 0x0A: escape = "\\n"
            case 0x0D: escape = "\\r"
            case 0x09: escape = "\\t"
            case 0x08: escape = "\\b"
            case 0x0C: escape = "\\f"
            case 0..<0x20: escape = "\\u00" + hexDigits[Int(b >> 4)] + hexDigits[Int(b & 0xF)]
            default: escape = nil
            }
            if let escape {
                out += Substring(utf8[plainStart..<i])
                out += escape
                plainStart = utf8.index(after: i)
            }
            i = utf8.index(after: i)
        }
        out += Substring(utf8[plainStart..<utf8.endIndex])
        out += "\""
    }

    private static let hexDigits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
}

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text in document order.
    public var compactText: String { JSONWriter().string(self) }
    /// Compact JSON text with keys sorted.
    public var sortedText: String { JSONWriter(sortedKeys: true).string(self) }
    /// Two-space indented JSON with keys sorted.
    public var prettyText: String { JSONWriter(sortedKeys: true, indent: "  ").string(self) }
    public var description: String { compactText }
}
