import Engine
import Foundation
import JSON
import Qwen3VL

/// The analysis tasks `postlens analyze --task` runs.
public enum TaskKind: String, Sendable, CaseIterable, Codable {
    case ocr, describe, moderation, sentiment, promo, detect, custom
}

/// The language a prompt is written in. Chinese first: the posts this product reads are mostly Chinese.
public enum PromptLanguage: String, Sendable, CaseIterable {
    case zh, en
}

/// What post-processing may use besides the model's output.
public struct PostContext: Sendable {
    public var record: PostRecord
    /// The year a date without one belongs to (the post's `meta.date` year, else the current year).
    public var referenceYear: Int
    /// The post's image (upright size), when it has one: grounding boxes are mapped into its pixels.
    public var image: ImageFrame?
    public init(record: PostRecord, referenceYear: Int, image: ImageFrame? = nil) {
        self.record = record
        self.referenceYear = referenceYear
        self.image = image
    }

    /// `meta.date` / `meta.posted_at` / `meta.created_at` (ISO-like) gives the year; otherwise `fallback`.
    public static func referenceYear(for record: PostRecord, fallback: Int) -> Int {
        for key in ["date", "posted_at", "created_at", "time"] {
            if let s = record.meta?[key]?.stringValue, let m = s.firstMatch(of: #/^(\d{4})/#), let y = Int(m.1) { return y }
        }
        return fallback
    }
}

public struct TaskError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A versioned task: prompt templates (zh, en), the JSON schema the model's answer must satisfy, and
/// the post-processing that turns that answer into the result.
public struct AnalysisTask: Sendable {
    public let kind: TaskKind
    /// Bumped whenever the prompt, the schema or the post-processing changes; recorded with each result.
    public let version: Int
    /// The JSON Schema of the model's answer (the response format for constrained decoding).
    public let schema: JSONValue
    /// `custom`: the user's instruction; `detect`: what to look for (optional).
    public let instruction: String?

    /// The most tokens the answer can take under the schema (`AnswerBudget`): a `max_tokens` of at least this many
    /// always lets it close. nil for a custom schema with an unbounded string or array.
    public let worstCaseTokens: Int?

    public var name: String { kind.rawValue }
    /// `moderation@3`.
    public var versionTag: String { "\(name)@\(version)" }

    init(kind: TaskKind, version: Int, schema: JSONValue, instruction: String? = nil) {
        self.kind = kind
        self.version = version
        self.schema = schema
        self.instruction = instruction
        worstCaseTokens = (try? JSONSchema.parse(schema.orderedSchemaValue)).flatMap(AnswerBudget.worstCaseTokens)
    }

    /// `max_tokens` when a request names none: the worst case, so that the answer always closes (1,024 for a custom
    /// schema without bounds).
    public var defaultMaxTokens: Int { worstCaseTokens ?? 1024 }

    /// The `max_tokens` a request asked for, or the default; a budget below the worst case is refused, since the
    /// answer could then be cut before it closes (and recorded as "not valid JSON").
    public func maxTokens(requested: Int?) throws -> Int {
        guard let requested else { return defaultMaxTokens }
        if let worst = worstCaseTokens, requested < worst {
            throw TaskError(Self.budgetRule(worst: worst, task: versionTag))
        }
        return requested
    }

    /// Why a budget is too small, as the option errors say it.
    static func budgetRule(worst: Int, task: String) -> String {
        "must be at least \(worst): a \(task) answer can take up to \(worst) tokens, and a smaller budget could cut it before it closes"
    }

    /// A built-in task (`custom` needs ``custom(instruction:schema:)``).
    public static func builtIn(_ kind: TaskKind) throws -> AnalysisTask {
        switch kind {
        case .ocr: return AnalysisTask(kind: .ocr, version: 2, schema: TaskSchemas.ocr)
        case .describe: return AnalysisTask(kind: .describe, version: 2, schema: TaskSchemas.describe)
        case .moderation: return AnalysisTask(kind: .moderation, version: 3, schema: TaskSchemas.moderation)
        case .sentiment: return AnalysisTask(kind: .sentiment, version: 2, schema: TaskSchemas.sentiment)
        case .promo: return AnalysisTask(kind: .promo, version: 2, schema: TaskSchemas.promo)
        case .detect: return AnalysisTask(kind: .detect, version: 2, schema: TaskSchemas.detect)
        case .custom: throw TaskError("the custom task needs an instruction and a JSON schema")
        }
    }

    /// The user's instruction and schema (an object schema in the validator's subset).
    public static func custom(instruction: String, schema: JSONValue) throws -> AnalysisTask {
        guard !instruction.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw TaskError("the custom task needs an instruction") }
        guard case .object(let s) = schema, s["type"] == "object" else { throw TaskError("the custom schema must be a JSON object schema with \"type\": \"object\"") }
        return AnalysisTask(kind: .custom, version: 1, schema: schema, instruction: instruction)
    }

    /// `detect` looking for what `instruction` names ("竞品 logo", "phone numbers"); nil or blank looks for everything
    /// the task's prompt lists.
    public static func detect(instruction: String?) -> AnalysisTask {
        let targets = instruction?.trimmingCharacters(in: .whitespacesAndNewlines)
        return AnalysisTask(kind: .detect, version: 2, schema: TaskSchemas.detect, instruction: targets?.isEmpty == false ? targets : nil)
    }

    // MARK: Prompts

    /// The conversation for one record: a system message with the task, then the user's turn with the
    /// image (when there is one) and the post's text.
    public func messages(for record: PostRecord, language: PromptLanguage, hasImage: Bool, tile: (index: Int, count: Int)? = nil) -> [ChatMessage] {
        let system = Prompts.system(for: self, language: language)
        var content: [ContentPart] = []
        if hasImage { content.append(.image) }
        content.append(.text(Prompts.user(for: self, record: record, language: language, hasImage: hasImage, tile: tile)))
        return [ChatMessage(role: .system, text: system), ChatMessage(role: .user, content: content)]
    }

    /// The messages as the chat template renders them, image tokens shown as one `<|image_pad|>`:
    /// what the golden tests compare.
    public func renderedPrompt(for record: PostRecord, language: PromptLanguage, hasImage: Bool) -> String {
        ChatTemplate.render(messages(for: record, language: language, hasImage: hasImage)).map { piece in
            switch piece {
            case .text(let t): t
            case .control(let c): c
            case .image: "<|vision_start|><|image_pad|><|vision_end|>"
            }
        }.joined()
    }

    // MARK: Output

    /// Parses the model's text leniently (the first JSON object in it), validates it against the
    /// schema, and post-processes it. Throws a per-item error that says what was wrong.
    public func result(fromModelOutput text: String, context: PostContext) throws -> JSONValue {
        guard let object = LenientJSON.firstObject(in: text) else { throw TaskError("output was not valid JSON") }
        let repaired = PostProcessing.coerce(object, to: schema)
        let problems = SchemaValidator.validate(repaired, against: schema)
        guard problems.isEmpty else {
            throw TaskError("output does not match the \(name) schema: " + problems.prefix(5).joined(separator: "; "))
        }
        return try postProcess(repaired, context: context)
    }

    /// Post-processing of a schema-valid answer.
    public func postProcess(_ output: JSONValue, context: PostContext) throws -> JSONValue {
        switch kind {
        case .ocr: return PostProcessing.ocr(output)
        case .describe: return PostProcessing.describe(output)
        case .moderation: return PostProcessing.moderation(output, context: context)
        case .sentiment: return PostProcessing.sentiment(output)
        case .promo: return PostProcessing.promo(output, context: context)
        case .detect: return try PostProcessing.detect(output, context: context)
        case .custom: return output
        }
    }
}
