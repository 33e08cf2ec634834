import Foundation
import JSON
import Store

/// Stores a job and its items in a `JobQueue` (SQLite or PostgreSQL) so that workers anywhere can run it.
///
/// Images named by local paths are read here and stored with the job (by SHA-256, once), because a worker on another
/// machine cannot read this machine's files; `http(s)` URLs stay URLs (each worker fetches them). With
/// `images: .reference` local paths are kept as absolute paths instead, for folders every worker mounts. Local paths must
/// lie inside the input's folder unless the input is trusted (`--trust-input`, the guard of `postlens analyze`).
/// A record that cannot be read (bad JSON, no image or text, a missing or oversized image file) is recorded at once as
/// that item's error, so the job's results still hold every input record exactly once.
public struct JobSubmission: Sendable {
    public enum ImageMode: String, Sendable, CaseIterable { case copy, reference }

    /// What to do with one record's image: bytes to store with the job, a reference workers resolve, or a refusal.
    public enum ResolvedImage: Sendable {
        case bytes(Data)
        case reference(String)
    }

    public var spec: JobSpec
    public var source: String
    public var maxAttempts = 3
    /// `job_` for the command line, `batch_` for `/v1/batches`.
    public var idPrefix = "job_"
    /// Items stored per statement.
    public var chunkSize = 500

    public init(spec: JobSpec, source: String) {
        self.spec = spec
        self.source = source
    }

    /// Stores the job and its items and opens it for workers; returns its first state (`queued`, or `completed` when
    /// every record was bad). `resolve` turns a record's image reference into bytes or a reference (throwing the
    /// item's error); `progress` hears (stored, total).
    public func submit(_ items: [InputItem], to queue: any JobQueue,
                       resolve: @Sendable (String) async throws -> ResolvedImage,
                       progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> JobInfo {
        let task = try spec.makeTask()
        let id = NewJob.makeID(prefix: idPrefix)
        try await queue.createJob(NewJob(id: id, task: spec.tag, spec: spec.json.sortedText, total: items.count, source: source,
                                         maxAttempts: maxAttempts))
        var stored = 0
        for chunk in stride(from: 0, to: items.count, by: chunkSize).map({ items[$0..<min($0 + chunkSize, items.count)] }) {
            var batch: [NewJobItem] = []
            for item in chunk {
                batch.append(await prepare(item, task: task, resolve: resolve))
            }
            try await queue.addItems(batch, to: id)
            stored += batch.count
            progress?(stored, items.count)
        }
        return try await queue.openJob(id: id)
    }

    func prepare(_ item: InputItem, task: AnalysisTask, resolve: @Sendable (String) async throws -> ResolvedImage) async -> NewJobItem {
        guard var record = item.record else {
            return NewJobItem(seq: item.seq, itemID: item.id, record: nil,
                              errorLine: ResultLines.error(id: item.id, error: item.error ?? "bad record", task: task).sortedText)
        }
        var bytes: Data?
        if let reference = record.image {
            do {
                switch try await resolve(reference) {
                case .bytes(let data): bytes = data
                case .reference(let resolved): record.image = resolved
                }
            } catch {
                return NewJobItem(seq: item.seq, itemID: item.id, record: nil,
                                  errorLine: ResultLines.error(id: item.id, error: "\(error)", task: task).sortedText)
            }
        }
        return NewJobItem(seq: item.seq, itemID: item.id, record: Self.recordJSON(record).sortedText, image: bytes)
    }

    /// A record as a job stores it.
    public static func recordJSON(_ record: PostRecord) -> JSONValue {
        var o: JSONObject = ["id": .string(record.id)]
        if let image = record.image { o["image"] = .string(image) }
        if let text = record.text { o["text"] = .string(text) }
        if let meta = record.meta { o["meta"] = meta }
        return .object(o)
    }

    /// The stored form back (nil when it is not a record object).
    public static func record(fromJSON text: String) -> PostRecord? {
        guard let value = try? JSONValue.parse(text), let id = value["id"]?.stringValue else { return nil }
        return PostRecord(id: id, image: value["image"]?.stringValue, text: value["text"]?.stringValue,
                          meta: value["meta"].flatMap { $0 == .null ? nil : $0 })
    }

    /// How the command line resolves images: local files (relative to `baseDirectory`, and inside it unless
    /// `trustInput`) read and size-checked, or kept as canonical absolute paths (`reference` mode); `http(s)` URLs kept
    /// (workers fetch them, from public hosts only unless the job's spec trusts its input).
    public static func localResolver(baseDirectory: URL, mode: ImageMode, maxBytes: Int,
                                     trustInput: Bool) -> @Sendable (String) async throws -> ResolvedImage {
        { reference in
            if reference.hasPrefix("http://") || reference.hasPrefix("https://") { return .reference(reference) }
            if mode == .reference {
                return .reference(try LocalImageFile.checkedPath(of: reference, base: baseDirectory, maxBytes: maxBytes, confined: !trustInput))
            }
            return .bytes(try LocalImageFile.read(reference, base: baseDirectory, maxBytes: maxBytes, confined: !trustInput))
        }
    }
}
