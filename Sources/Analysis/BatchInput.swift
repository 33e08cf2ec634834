import Foundation
import JSON

/// A job's input: posts as `postlens analyze` reads them (JSON lines, CSV, a folder of images), or the OpenAI batch
/// format (`vllm run-batch` reads the same), one request per line:
///
/// ```json
/// {"custom_id": "post-1", "method": "POST", "url": "/v1/analyze",
///  "body": {"task": "sentiment", "text": "物流太慢了", "images": ["photos/1.jpg"], "options": {"language": "zh"}}}
/// ```
/// `custom_id` becomes the item's id; the body is what `POST /v1/analyze` takes. One job runs one task with one set of
/// options: they come from the first request (unless given on the command line), and a line that asks for another
/// task or other options is that item's error, as is any other `url`.
public struct BatchInput: Sendable {
    public var items: [InputItem]
    /// The lines were OpenAI batch requests.
    public var openAIFormat = false
    /// OpenAI format: the task and options the requests named.
    public var task: String?
    public var options: JSONObject?

    /// How much one job's input may hold, so that a submission's cost is bounded: its memory while it is read and
    /// stored, and its rows in the database. `POST /v1/batches` has the server's limits (`maxBatchRecords`, the body
    /// limit); `postlens jobs submit` has `--max-records` and `--max-input-mb`.
    public struct Limits: Sendable, Equatable {
        public var maxRecords: Int
        /// Largest input file, in bytes (a folder's images are bounded one by one, by the job's `max_image_bytes`).
        public var maxBytes: Int
        /// Each JSON line's depth and size (a line over them is that record's error).
        public var lines: JSONLines.Limits

        public init(maxRecords: Int, maxBytes: Int, lines: JSONLines.Limits = .input) {
            self.maxRecords = maxRecords
            self.maxBytes = maxBytes
            self.lines = lines
        }

        /// `postlens jobs submit`'s defaults: a million records, 1 GiB of input.
        public static let submission = Limits(maxRecords: 1_000_000, maxBytes: 1 << 30)

        /// Why `count` records are refused (`what` names the input: "the body", "posts.jsonl"), or nil when they fit.
        public func refusal(records count: Int, in what: String) -> String? {
            count > maxRecords ? "\(what) has \(count) records, more than the \(maxRecords) one batch job may have" : nil
        }
    }

    /// An input over its limits (the whole submission is refused; nothing is stored).
    public struct LimitError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads `url` by its kind: a folder, `.csv`/`.tsv`, otherwise JSON lines (OpenAI batch requests when the first
    /// object has a `custom_id`). `task` is the job's task when already known (a line naming another one is refused).
    /// A file larger than `limits.maxBytes` is refused before it is read, more records than `limits.maxRecords` after.
    public static func read(_ url: URL, columns: RecordReader.Columns = .init(), task: String? = nil,
                            limits: Limits = .submission) throws -> BatchInput {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        if exists, !isDirectory.boolValue, let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int,
           size > limits.maxBytes {
            throw LimitError(description: "\(url.lastPathComponent) has \(size) bytes, more than the \(limits.maxBytes) one batch job may have")
        }
        let ext = url.pathExtension.lowercased()
        let input: BatchInput
        if !exists || isDirectory.boolValue || ext == "csv" || ext == "tsv" {
            input = BatchInput(items: try RecordReader.read(url, columns: columns))
        } else {
            guard let data = FileManager.default.contents(atPath: url.path) else { throw RecordReaderError.unreadable(url.path) }
            // Records are counted before any line is parsed.
            let lines = JSONLines.split(String(decoding: data, as: UTF8.self))
            if let refusal = limits.refusal(records: lines.count, in: url.lastPathComponent) { throw LimitError(description: refusal) }
            input = parseJSONL(JSONLines.parse(lines, limits: limits.lines), columns: columns, task: task)
        }
        if let refusal = limits.refusal(records: input.items.count, in: url.lastPathComponent) { throw LimitError(description: refusal) }
        return input
    }

    /// JSON lines: plain records, or OpenAI batch requests. Each line is parsed once, within `limits`; a line over them
    /// is that item's error.
    public static func parseJSONL(_ text: String, columns: RecordReader.Columns = .init(), task: String? = nil,
                                  limits: JSONLines.Limits = .input) -> BatchInput {
        parseJSONL(JSONLines.parse(text, limits: limits), columns: columns, task: task)
    }

    /// Lines already parsed (the server checks them first: a malformed line refuses the whole upload there).
    public static func parseJSONL(_ lines: [JSONLines.Line], columns: RecordReader.Columns = .init(), task: String? = nil) -> BatchInput {
        isOpenAIBatch(lines) ? readOpenAI(lines, task: task) : BatchInput(items: RecordReader.records(lines, columns: columns))
    }

    /// The first line that is a JSON object has `custom_id` and `body`.
    public static func isOpenAIBatch(_ lines: [JSONLines.Line]) -> Bool {
        for line in lines {
            guard case .success(.object(let object)) = line.value else { continue }
            return object["custom_id"] != nil && object["body"] != nil
        }
        return false
    }

    static func readOpenAI(_ lines: [JSONLines.Line], task fixedTask: String?) -> BatchInput {
        var input = BatchInput(items: [], openAIFormat: true, task: fixedTask, options: nil)
        for line in lines {
            let number = line.number
            let seq = input.items.count
            let fallbackID = "line-\(number)"
            func refuse(_ id: String, _ why: String) { input.items.append(InputItem(seq: seq, id: id, record: nil, error: "line \(number): \(why)")) }
            let request: JSONObject
            switch RecordReader.object(of: line) {
            case .object(let object): request = object
            case .refused(let error):
                input.items.append(InputItem(seq: seq, id: fallbackID, record: nil, error: error))
                continue
            }
            let id: String
            switch request["custom_id"] {
            case .string(let s)? where !s.isEmpty: id = s
            case .number(let n)?: id = n.text
            default: refuse(fallbackID, "\"custom_id\" is required (a string)"); continue
            }
            if let method = request["method"]?.stringValue, method.uppercased() != "POST" {
                refuse(id, "method must be POST, not \(method)"); continue
            }
            let url = request["url"]?.stringValue ?? "/v1/analyze"
            guard url == "/v1/analyze" else {
                refuse(id, "url \(url) is not supported: jobs run analysis tasks; send \"url\": \"/v1/analyze\" with a body {task, text, images, options}")
                continue
            }
            guard case .object(let body)? = request["body"] else { refuse(id, "\"body\" must be an object {task, text, images, options}"); continue }
            guard let task = body["task"]?.stringValue ?? input.task else { refuse(id, "body.task is required"); continue }
            if let expected = input.task, expected.lowercased() != task.lowercased() {
                refuse(id, "body.task \(task) differs from the job's task \(expected) (one task per job)"); continue
            }
            input.task = input.task ?? task
            let options = body["options"]?.objectValue ?? [:]
            if let expected = input.options, expected != options {
                refuse(id, "body.options differ from the first request's (one set of options per job)"); continue
            }
            input.options = input.options ?? options
            var images: [JSONValue] = []
            switch body["images"] ?? body["image"] {
            case nil, .null?: break
            case .array(let list)?: images = list
            case let single?: images = [single]
            }
            guard images.count <= 1 else { refuse(id, "body.images: the analysis tasks read one image per post"); continue }
            var record: JSONObject = ["id": .string(id)]
            if let image = images.first { record["image"] = image }
            if let text = body["text"] { record["text"] = text }
            if let meta = body["meta"] { record["meta"] = meta }
            input.items.append(RecordReader.item(from: record, seq: seq, fallbackID: id, columns: .init(), location: "line \(number)"))
        }
        return input
    }
}

/// Result lines in OpenAI's batch output shape, for jobs whose input was OpenAI batch requests:
/// `{"id", "custom_id", "response": {"status_code": 200, "body": <result line>}, "error": null | {"code", "message"}}`.
public enum OpenAIBatchOutput {
    public static func line(_ result: JSONValue, jobID: String, seq: Int) -> JSONValue {
        let failed = result["status"]?.stringValue == "error"
        return [
            "id": .string("\(jobID)-\(seq)"),
            "custom_id": result["id"] ?? .null,
            "response": ["status_code": 200, "request_id": .string("\(jobID)-\(seq)"), "body": result],
            "error": failed ? ["code": "item_failed", "message": result["error"] ?? .null] : .null,
        ]
    }
}
