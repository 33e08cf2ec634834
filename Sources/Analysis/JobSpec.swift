import Engine
import Foundation
import JSON

/// How a job's items are analyzed: the task (with its version) and its options. Stored with the job as JSON, so every
/// worker, on any machine, runs the items the same way; a worker whose task version differs never claims the job.
///
/// The options are read in one place for every entry point (`POST /v1/analyze` and `/v1/batches` bodies and query
/// strings, `postlens jobs submit --options`): `language`, `max_tokens`, `dense`, `max_pixels`, for `custom`
/// `instruction` and `schema`, and for `detect` an optional `instruction` (what to look for).
public struct JobSpec: Sendable, Equatable {
    public var task: TaskKind
    public var version: Int
    public var language: PromptLanguage
    public var maxTokens: Int
    public var maxPixels: Int?
    public var dense: RunOptions.DenseMode
    public var maxImageBytes: Int
    public var instruction: String?
    public var schema: JSONValue?
    /// The input was OpenAI batch JSONL (`custom_id` …): results can be written in OpenAI's output shape.
    public var openAIFormat = false
    /// The submitter trusts the input (`jobs submit --trust-input`): workers read image paths anywhere and fetch image
    /// URLs of private and loopback hosts. Otherwise URLs must name public hosts (`RemoteImageFetcher`'s guard).
    public var trustInput = false
    /// `jobs submit --images reference`: the input's folder, which every image path of the job lies inside (checked
    /// at submission, and again by the worker that reads the file, after `..` and symlinks are resolved).
    public var imageFolder: String?

    /// Every option key, and the ones an HTTP client may send (the server sets the pixel budget itself).
    public static let optionKeys: Set<String> = ["language", "max_tokens", "dense", "instruction", "schema", "max_pixels"]

    /// A refused option: which key, and the rule it broke (`must be "zh" or "en"`).
    public struct OptionError: Error, Equatable, CustomStringConvertible {
        public var key: String
        public var rule: String
        public var description: String { "'\(key)' \(rule)" }
    }

    /// `task@version`, what workers claim by.
    public var tag: String { "\(task.rawValue)@\(version)" }

    /// Reads a task name and its options. `defaults` supplies what an option left out means; `allowed` the keys
    /// accepted (others are refused); `fromQuery`: values arrive as strings (`max_tokens=64`, `dense=true`, `schema={…}`)
    /// and unknown keys are ignored (other query parameters).
    public static func parse(task taskValue: JSONValue?, options: JSONObject, defaults: RunOptions = RunOptions(),
                             allowed: Set<String> = optionKeys, fromQuery: Bool = false) throws -> JobSpec {
        let names = TaskKind.allCases.map(\.rawValue).joined(separator: ", ")
        guard let taskValue, taskValue != .null else { throw OptionError(key: "task", rule: "is required (one of \(names))") }
        guard let name = taskValue.stringValue, let kind = TaskKind(rawValue: name.lowercased()) else {
            throw OptionError(key: "task", rule: "must be one of \(names)")
        }
        func fail(_ key: String, _ rule: String) -> OptionError { OptionError(key: key, rule: rule) }
        if !fromQuery {
            for key in options.keys where !allowed.contains(key) {
                throw fail(key, "is not an option; the options are \(allowed.sorted().joined(separator: ", "))")
            }
        }
        var spec = JobSpec(task: kind, version: 1, language: defaults.language, maxTokens: defaults.maxTokens, maxPixels: defaults.maxPixels,
                           dense: defaults.dense, maxImageBytes: defaults.maxImageBytes, instruction: nil, schema: nil)
        switch options["language"] {
        case nil, .null?: break
        case .string(let s)?:
            guard let language = PromptLanguage(rawValue: s.lowercased()) else { throw fail("language", "must be \"zh\" or \"en\"") }
            spec.language = language
        default: throw fail("language", "must be \"zh\" or \"en\"")
        }
        let requestedMaxTokens = try positiveInteger(options["max_tokens"], key: "max_tokens", fromQuery: fromQuery)
        if allowed.contains("max_pixels") {
            spec.maxPixels = try positiveInteger(options["max_pixels"], key: "max_pixels", fromQuery: fromQuery) ?? spec.maxPixels
        }
        let denseRule = "must be true, false or \"auto\""
        switch options["dense"] {
        case nil, .null?: break
        case .bool(let b)?: spec.dense = b ? .on : .off
        case .string(let s)?:
            switch s.lowercased() {
            case "auto": spec.dense = .auto
            case "true", "on": spec.dense = .on
            case "false", "off": spec.dense = .off
            default: throw fail("dense", denseRule)
            }
        default: throw fail("dense", denseRule)
        }
        switch options["instruction"] {
        case nil, .null?: break
        case .string(let s)?: spec.instruction = s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : s
        default: throw fail("instruction", "must be a string")
        }
        spec.schema = options["schema"].flatMap { $0 == .null ? nil : $0 }
        if fromQuery, let text = spec.schema?.stringValue {
            do { spec.schema = try JSONValue.parse(text) } catch { throw fail("schema", "is not valid JSON: \(error)") }
        }
        if kind == .custom {
            guard let instruction = spec.instruction else { throw fail("instruction", "is required for the custom task (what to extract or decide)") }
            guard let schema = spec.schema else { throw fail("schema", "is required for the custom task (a JSON object schema)") }
            guard case .object(let s) = schema, s["type"] == "object" else {
                throw fail("schema", "must be a JSON schema object with \"type\": \"object\"")
            }
            let task: AnalysisTask
            do { task = try AnalysisTask.custom(instruction: instruction, schema: schema) } catch { throw fail("schema", "is not usable: \(error)") }
            // The engine must be able to constrain decoding to it.
            do { _ = try JSONSchema.parse(task.schema.orderedSchemaValue) } catch { throw fail("schema", "is not supported: \(error)") }
        } else if kind == .detect {
            if spec.schema != nil { throw fail("schema", "is only used by the custom task") }
            spec.version = AnalysisTask.detect(instruction: spec.instruction).version
        } else {
            if spec.instruction != nil { throw fail("instruction", "is only used by the custom and detect tasks") }
            if spec.schema != nil { throw fail("schema", "is only used by the custom task") }
            spec.version = try AnalysisTask.builtIn(kind).version
        }
        // The answer's worst case decides the default budget, and a smaller one is refused (it could cut the answer).
        let task = try spec.makeTask()
        if let requestedMaxTokens {
            if let worst = task.worstCaseTokens, requestedMaxTokens < worst {
                throw fail("max_tokens", AnalysisTask.budgetRule(worst: worst, task: task.versionTag))
            }
            spec.maxTokens = requestedMaxTokens
        } else {
            spec.maxTokens = task.worstCaseTokens ?? defaults.maxTokens
        }
        return spec
    }

    static func positiveInteger(_ value: JSONValue?, key: String, fromQuery: Bool) throws -> Int? {
        let rule = "must be an integer, at least 1"
        switch value {
        case nil, .null?: return nil
        case .number(let n)?:
            guard let i = n.int, i >= 1, i <= 1_000_000_000 else { throw OptionError(key: key, rule: rule) }
            return i
        case .string(let s)? where fromQuery:
            guard let n = Int(s), n >= 1 else { throw OptionError(key: key, rule: rule) }
            return n
        default: throw OptionError(key: key, rule: rule)
        }
    }

    // MARK: - Running

    /// The task this spec names. Throws when this build's version of the task differs from the job's.
    public func makeTask() throws -> AnalysisTask {
        let task: AnalysisTask
        if self.task == .custom {
            guard let instruction, let schema else { throw TaskError("the job's custom task has no instruction or schema") }
            task = try AnalysisTask.custom(instruction: instruction, schema: schema)
        } else if self.task == .detect {
            task = AnalysisTask.detect(instruction: instruction)
        } else {
            task = try AnalysisTask.builtIn(self.task)
        }
        guard task.version == version else {
            throw TaskError("the job was made for \(tag) but this postlens runs \(task.versionTag); run it with a postlens of that version")
        }
        return task
    }

    /// Run options for the items, with the image guard the submitter chose: paths inside `imageFolder` (or anywhere,
    /// and URLs of any host, when the input is trusted).
    public func runOptions() -> RunOptions {
        var options = RunOptions()
        options.language = language
        options.maxTokens = maxTokens
        options.maxPixels = maxPixels
        options.dense = dense
        options.maxImageBytes = maxImageBytes
        options.baseDirectory = imageFolder.map { URL(fileURLWithPath: $0, isDirectory: true) }
        options.trustInput = trustInput
        return options
    }

    /// The task tags this build can run (what a worker claims).
    public static var runnableTags: [String] {
        TaskKind.allCases.compactMap { kind in kind == .custom ? "custom@1" : (try? AnalysisTask.builtIn(kind))?.versionTag }
    }

    // MARK: - Stored form

    public var json: JSONValue {
        var o: JSONObject = [
            "task": .string(task.rawValue), "task_version": JSONValue(version), "language": .string(language.rawValue),
            "max_tokens": JSONValue(maxTokens), "dense": .string(dense.rawValue), "max_image_bytes": JSONValue(maxImageBytes),
        ]
        if let maxPixels { o["max_pixels"] = JSONValue(maxPixels) }
        if let instruction { o["instruction"] = .string(instruction) }
        if let schema { o["schema"] = schema }
        if openAIFormat { o["input_format"] = "openai" }
        if trustInput { o["trust_input"] = true }
        if let imageFolder { o["image_folder"] = .string(imageFolder) }
        return .object(o)
    }

    /// Reads the stored form (written by `json`), through the JSON module's path-aware reader: a field of the wrong
    /// type is an error naming it, not a silent default.
    public init(json: JSONValue) throws {
        let reader = JSONReader(json)
        do {
            guard let name = try reader.optionalString("task"), let kind = TaskKind(rawValue: name) else {
                throw TaskError("the job's spec names no known task: \(json.sortedText)")
            }
            task = kind
            version = try reader.optionalInt("task_version") ?? 1
            language = try reader.optionalString("language").flatMap(PromptLanguage.init(rawValue:)) ?? .zh
            maxTokens = try reader.optionalInt("max_tokens") ?? 1024
            maxPixels = try reader.optionalInt("max_pixels")
            dense = try reader.optionalString("dense").flatMap(RunOptions.DenseMode.init(rawValue:)) ?? .auto
            maxImageBytes = try reader.optionalInt("max_image_bytes") ?? RunOptions().maxImageBytes
            instruction = try reader.optionalString("instruction")
            schema = try reader.optional("schema")?.value
            openAIFormat = try reader.optionalString("input_format") == "openai"
            trustInput = try reader.optionalBool("trust_input") ?? false
            imageFolder = try reader.optionalString("image_folder")
        } catch let error as JSONReadError {
            throw TaskError("the job's spec is unreadable: \(error)")
        }
    }

    public init(task: TaskKind, version: Int, language: PromptLanguage, maxTokens: Int, maxPixels: Int?, dense: RunOptions.DenseMode,
                maxImageBytes: Int, instruction: String?, schema: JSONValue?) {
        self.task = task
        self.version = version
        self.language = language
        self.maxTokens = maxTokens
        self.maxPixels = maxPixels
        self.dense = dense
        self.maxImageBytes = maxImageBytes
        self.instruction = instruction
        self.schema = schema
    }
}
