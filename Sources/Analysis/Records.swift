import Foundation
import JSON

/// One post to analyze: `{id, image (path or URL), text, meta}`.
public struct PostRecord: Sendable, Equatable {
    public var id: String
    /// A file path (relative to the input file's folder), a `file://` URL, or an `http(s)://` URL.
    public var image: String?
    /// The post's caption or comment.
    public var text: String?
    public var meta: JSONValue?

    public init(id: String, image: String? = nil, text: String? = nil, meta: JSONValue? = nil) {
        self.id = id
        self.image = image
        self.text = text
        self.meta = meta
    }
}

/// An input position: a record, or the reason the row could not become one (recorded as that item's error).
public struct InputItem: Sendable, Equatable {
    /// 0-based position in the input; the job state's key.
    public var seq: Int
    public var id: String
    public var record: PostRecord?
    public var error: String?

    public init(seq: Int, id: String, record: PostRecord?, error: String?) {
        self.seq = seq
        self.id = id
        self.record = record
        self.error = error
    }
}

public enum RecordReaderError: Error, CustomStringConvertible {
    case unreadable(String)
    case unsupported(String)
    public var description: String {
        switch self {
        case .unreadable(let m): "cannot read input: \(m)"
        case .unsupported(let m): "unsupported input: \(m)"
        }
    }
}

/// Reads posts from JSONL, CSV, or a folder of images. Row-level problems become per-item errors;
/// only an unreadable input as a whole throws.
public enum RecordReader {
    public struct Columns: Sendable {
        public var id = "id"
        public var text = "text"
        public var image = "image"
        public init(id: String = "id", text: String = "text", image: String = "image") {
            self.id = id
            self.text = text
            self.image = image
        }
    }

    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "webp", "gif", "bmp"]

    /// Reads `url` by its kind: a folder, `.csv`/`.tsv`, otherwise JSON lines.
    public static func read(_ url: URL, columns: Columns = Columns()) throws -> [InputItem] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw RecordReaderError.unreadable("\(url.path) does not exist")
        }
        if isDirectory.boolValue { return try readFolder(url) }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw RecordReaderError.unreadable(url.path) }
        let text = String(decoding: data, as: UTF8.self)
        switch url.pathExtension.lowercased() {
        case "csv": return readCSV(text, columns: columns)
        case "tsv": return readCSV(text, columns: columns, separator: "\t")
        default: return readJSONL(text, columns: columns)
        }
    }

    /// One JSON object per line; blank lines are skipped; ids default to `line-N`. A line that is not a JSON object,
    /// or over `limits`, is that item's error.
    public static func readJSONL(_ text: String, columns: Columns = Columns(), limits: JSONLines.Limits = .input) -> [InputItem] {
        records(JSONLines.parse(text, limits: limits), columns: columns)
    }

    /// Parsed lines as records, in order (`seq` counts the lines that were not blank).
    static func records(_ lines: [JSONLines.Line], columns: Columns) -> [InputItem] {
        lines.enumerated().map { seq, line in
            switch object(of: line) {
            case .object(let object):
                item(from: object, seq: seq, fallbackID: "line-\(line.number)", columns: columns, location: "line \(line.number)")
            case .refused(let error):
                InputItem(seq: seq, id: "line-\(line.number)", record: nil, error: error)
            }
        }
    }

    /// A parsed line's object, or the item's error for a line that has none (`line 3: not valid JSON`,
    /// `line 3: not a JSON object`, `line 3: refused: <the limit>`).
    static func object(of line: JSONLines.Line) -> LineObject {
        switch line.value {
        case .success(.object(let object)): .object(object)
        case .success: .refused("line \(line.number): not a JSON object")
        case .failure(let refusal) where refusal.isLimit: .refused("line \(line.number): refused: \(refusal.reason)")
        case .failure: .refused("line \(line.number): not valid JSON")
        }
    }

    enum LineObject {
        case object(JSONObject)
        case refused(String)
    }

    static func item(from object: JSONObject, seq: Int, fallbackID: String, columns: Columns, location: String) -> InputItem {
        var id = fallbackID
        switch object[columns.id] {
        case .string(let s) where !s.isEmpty: id = s
        case .number(let n): id = n.text
        default: break
        }
        enum Field { case value(String?), invalid(String) }
        func field(_ name: String) -> Field {
            switch object[name] {
            case nil, .null: .value(nil)
            case .string(let s): .value(s.isEmpty ? nil : s)
            default: .invalid("\(location): \"\(name)\" must be a string")
            }
        }
        let image: String?, text: String?
        switch (field(columns.image), field(columns.text)) {
        case (.invalid(let e), _), (_, .invalid(let e)):
            return InputItem(seq: seq, id: id, record: nil, error: e)
        case (.value(let i), .value(let t)):
            image = i
            text = t
        }
        if image == nil && text == nil {
            return InputItem(seq: seq, id: id, record: nil, error: "\(location): record has neither \"\(columns.image)\" nor \"\(columns.text)\"")
        }
        var meta: JSONValue? = object["meta"]
        let known: Set<String> = [columns.id, columns.image, columns.text, "meta"]
        let extra = object.filter { !known.contains($0.key) }
        if !extra.isEmpty {
            var merged = meta?.objectValue ?? [:]
            for (k, v) in extra where merged[k] == nil { merged[k] = v }
            meta = .object(merged)
        }
        return InputItem(seq: seq, id: id, record: PostRecord(id: id, image: image, text: text, meta: meta), error: nil)
    }

    /// RFC 4180 CSV with a header row (a UTF-8 BOM, quoted fields with commas, quotes and newlines, CRLF).
    /// Columns other than id/text/image go to `meta`; ids default to `row-N` (N counts data rows from 1).
    public static func readCSV(_ text: String, columns: Columns = Columns(), separator: Character = ",") -> [InputItem] {
        let parsed = CSV.parse(text, separator: separator)
        guard let header = parsed.rows.first else { return [] }
        var items: [InputItem] = []
        let dataRows = parsed.rows.count - 1
        for (index, row) in parsed.rows.dropFirst().enumerated() {
            if row.count == 1 && row[0].isEmpty { continue }
            let rowNumber = index + 1
            let seq = items.count
            let fallbackID = "row-\(rowNumber)"
            if let error = parsed.error, rowNumber == dataRows {
                // The text ended inside this row's quoted field: the row is bad, not the whole file.
                let id = header.firstIndex(of: columns.id).flatMap { $0 < row.count - 1 && !row[$0].isEmpty ? row[$0] : nil } ?? fallbackID
                items.append(InputItem(seq: seq, id: id, record: nil, error: "row \(rowNumber): \(error)"))
                continue
            }
            guard row.count == header.count else {
                let id = header.firstIndex(of: columns.id).flatMap { $0 < row.count && !row[$0].isEmpty ? row[$0] : nil } ?? fallbackID
                items.append(InputItem(seq: seq, id: id, record: nil,
                                       error: "row \(rowNumber): \(row.count) fields, the header has \(header.count)"))
                continue
            }
            var object: JSONObject = [:]
            for (name, value) in zip(header, row) { object[name] = .string(value) }
            items.append(item(from: object, seq: seq, fallbackID: fallbackID, columns: columns, location: "row \(rowNumber)"))
        }
        return items
    }

    /// Every image in a folder (sorted by name, not recursive); the id is the file name, the text
    /// comes from a sidecar `NAME.txt` when there is one.
    public static func readFolder(_ url: URL) throws -> [InputItem] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted() } catch {
            throw RecordReaderError.unreadable("\(url.path): \(error)")
        }
        var items: [InputItem] = []
        for name in names where imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
            let file = url.appendingPathComponent(name)
            let sidecar = file.deletingPathExtension().appendingPathExtension("txt")
            let text = (try? String(contentsOf: sidecar, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            items.append(InputItem(seq: items.count, id: name,
                                   record: PostRecord(id: name, image: file.path, text: text?.isEmpty == false ? text : nil), error: nil))
        }
        return items
    }
}

/// A small RFC 4180 CSV reader and writer.
public enum CSV {
    public struct Parsed: Sendable, Equatable {
        public var rows: [[String]]
        /// Set when the text ends inside a quoted field (then the last row is incomplete).
        public var error: String?
    }

    public static func parse(_ text: String, separator: Character = ",") -> Parsed {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var afterQuote = false
        var chars = Substring(text)
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        var iterator = chars.makeIterator()
        var pending: Character? = nil
        func next() -> Character? {
            if let p = pending { pending = nil; return p }
            return iterator.next()
        }
        var sawAny = false
        while let c = next() {
            sawAny = true
            if inQuotes {
                if c == "\"" {
                    if let n = next() {
                        if n == "\"" { field.append("\"") } else { inQuotes = false; afterQuote = true; pending = n }
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty && !afterQuote:
                inQuotes = true
            case separator:
                row.append(field); field = ""; afterQuote = false
            case "\r\n", "\n", "\r":
                row.append(field); field = ""; afterQuote = false
                rows.append(row); row = []
            default:
                field.append(c)
            }
        }
        if inQuotes {
            row.append(field)
            rows.append(row)
            return Parsed(rows: rows, error: "unterminated quoted field")
        }
        if sawAny && (!field.isEmpty || !row.isEmpty || afterQuote) {
            row.append(field)
            rows.append(row)
        }
        return Parsed(rows: rows, error: nil)
    }

    /// One field, quoted when it holds the separator, a quote, or a line break.
    public static func escape(_ field: String, separator: Character = ",") -> String {
        if field.contains(where: { $0 == separator || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return field
    }

    public static func line(_ fields: [String], separator: Character = ",") -> String {
        fields.map { escape($0, separator: separator) }.joined(separator: String(separator)) + "\r\n"
    }
}
