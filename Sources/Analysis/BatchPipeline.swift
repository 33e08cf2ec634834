import Foundation
import JSON

/// What a batch run reports as it goes.
public protocol BatchProgressReporter: Sendable {
    /// `alreadyDone` items were finished by an earlier, interrupted run.
    func began(total: Int, alreadyDone: Int)
    func progressed(done: Int, failed: Int, total: Int, itemsPerSecond: Double?, etaSeconds: Double?)
    func finished()
}

/// The counts at the end of a run (over all items, resumed ones included).
public struct BatchSummary: Sendable, Equatable {
    public var task: String
    public var total = 0
    public var succeeded = 0
    public var failed = 0
    /// Items finished by an earlier run and not redone.
    public var resumed = 0
    /// Items analyzed in this run.
    public var processed = 0
    public var byVerdict: [String: Int] = [:]
    public var byPolarity: [String: Int] = [:]
    /// (id, error) for each failed item, in input order.
    public var failures: [Failure] = []
    public var seconds = 0.0

    public struct Failure: Sendable, Equatable {
        public var id: String
        public var error: String
    }

    /// Counts over finished items: (id, ok, output line), in input order.
    public init(task: String, lines: [(id: String, ok: Bool, line: String)]) {
        self.task = task
        for item in lines {
            total += 1
            let line = try? JSONValue.parse(item.line)
            if item.ok {
                succeeded += 1
                if let v = line?["result"]?["verdict"]?.stringValue { byVerdict[v, default: 0] += 1 }
                if let p = line?["result"]?["polarity"]?.stringValue { byPolarity[p, default: 0] += 1 }
            } else {
                failed += 1
                failures.append(.init(id: item.id, error: line?["error"]?.stringValue ?? "error"))
            }
        }
    }

    public init(task: String) { self.task = task }

    /// Human-readable lines for the end of a run.
    public var lines: [String] {
        var out = ["\(task): \(total) items, \(succeeded) ok, \(failed) failed"
            + (resumed > 0 ? ", \(resumed) resumed from an earlier run" : "")
            + String(format: " (%.1f s)", seconds)]
        if !byVerdict.isEmpty {
            out.append("verdicts: " + ["allow", "review", "block"].map { "\($0) \(byVerdict[$0] ?? 0)" }.joined(separator: ", "))
        }
        if !byPolarity.isEmpty {
            out.append("polarity: " + ["positive", "negative", "neutral", "mixed"].map { "\($0) \(byPolarity[$0] ?? 0)" }.joined(separator: ", "))
        }
        if !failures.isEmpty {
            out.append("failures:")
            for f in failures.prefix(20) { out.append("  \(f.id): \(f.error)") }
            if failures.count > 20 { out.append("  … and \(failures.count - 20) more (see the output's error fields)") }
        }
        return out
    }

    public var json: JSONValue {
        [
            "task": .string(task), "total": JSONValue(Double(total)), "succeeded": JSONValue(Double(succeeded)),
            "failed": JSONValue(Double(failed)), "resumed": JSONValue(Double(resumed)), "processed": JSONValue(Double(processed)),
            "by_verdict": .object(JSONObject(sorting: byVerdict.mapValues { JSONValue($0) })),
            "by_polarity": .object(JSONObject(sorting: byPolarity.mapValues { JSONValue($0) })),
            "failures": .array(failures.map { ["id": .string($0.id), "error": .string($0.error)] }),
            "seconds": JSONValue((seconds * 1000).rounded() / 1000),
        ]
    }
}

/// Runs a task over many records, one at a time (the engine is serial), recording each item's
/// output line in the job store as it finishes. Bad records are recorded as errors and the run goes on.
public struct BatchPipeline: Sendable {
    public let runner: TaskRunner
    public let store: JobStore

    public init(runner: TaskRunner, store: JobStore) {
        self.runner = runner
        self.store = store
    }

    /// The job's identity: a resumed run must match it.
    public func jobIdentity(input: String) -> [String: String] {
        ["task": runner.task.versionTag, "input": input]
    }

    public func run(_ items: [InputItem], input: String, resume: Bool, progress: (any BatchProgressReporter)? = nil) async throws -> BatchSummary {
        let clock = ContinuousClock()
        let start = clock.now
        try store.begin(job: jobIdentity(input: input), resume: resume)
        let done = resume ? try store.finished() : [:]
        let alreadyDone = items.filter { done[$0.seq] == $0.id }.count
        progress?.began(total: items.count, alreadyDone: alreadyDone)

        var finished = alreadyDone, processed = 0
        var failed = try store.items().filter { !$0.ok && done[$0.seq] != nil }.count
        for item in items where done[item.seq] != item.id {
            try Task.checkCancellation()
            let line: JSONValue, ok: Bool
            if let record = item.record {
                let outcome = await runner.run(record)
                line = outputLine(outcome, record: record)
                ok = outcome.ok
            } else {
                line = errorLine(id: item.id, error: item.error ?? "bad record")
                ok = false
            }
            try store.record(seq: item.seq, id: item.id, ok: ok, line: line.sortedText)
            finished += 1
            processed += 1
            if !ok { failed += 1 }
            let elapsed = seconds(clock.now - start)
            let rate = elapsed > 0 ? Double(processed) / elapsed : nil
            let eta = rate.map { Double(items.count - finished) / $0 }
            progress?.progressed(done: finished, failed: failed, total: items.count, itemsPerSecond: rate, etaSeconds: eta)
        }
        progress?.finished()
        var summary = try summarize()
        summary.resumed = alreadyDone
        summary.processed = processed
        summary.seconds = seconds(clock.now - start)
        return summary
    }

    func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func outputLine(_ outcome: ItemOutcome, record: PostRecord) -> JSONValue {
        ResultLines.outcome(outcome, record: record, task: runner.task)
    }

    func errorLine(id: String, error: String) -> JSONValue { ResultLines.error(id: id, error: error, task: runner.task) }

    /// Counts over every stored item.
    public func summarize() throws -> BatchSummary {
        BatchSummary(task: runner.task.versionTag, lines: try store.items().map { ($0.id, $0.ok, $0.line) })
    }

    /// Writes every stored item, in input order, as JSON lines or (for a `.csv` path) CSV; atomically.
    public func export(to url: URL) throws {
        let items = try store.items()
        var out = ""
        if url.pathExtension.lowercased() == "csv" {
            out = ResultCSV.render(items.compactMap { try? JSONValue.parse($0.line) }, task: runner.task.kind)
        } else {
            for item in items { out += item.line + "\n" }
        }
        try Data(out.utf8).write(to: url, options: .atomic)
    }

    /// The JSON lines of every stored item.
    public func exportLines() throws -> [String] { try store.items().map(\.line) }
}

/// Results as CSV: `id,task,status,error`, the task's headline columns, and the full result as JSON.
public enum ResultCSV {
    static func headline(_ task: TaskKind) -> [String] {
        switch task {
        case .ocr: ["text"]
        case .describe: ["summary"]
        case .moderation: ["verdict", "categories", "evidence_2d", "evidence_px"]
        case .sentiment: ["polarity", "score"]
        case .promo: ["platform", "products"]
        case .detect: ["objects", "boxes_2d", "boxes_px"]
        case .custom: []
        }
    }

    public static func render(_ lines: [JSONValue], task: TaskKind) -> String {
        let extra = headline(task)
        var out = CSV.line(["id", "task", "status", "error"] + extra + ["result"])
        for line in lines {
            let result = line["result"] ?? .null
            var fields = [line["id"]?.stringValue ?? "", line["task"]?.stringValue ?? "", line["status"]?.stringValue ?? "",
                          line["error"]?.stringValue ?? ""]
            for column in extra {
                let value = result[column]
                switch (column, value) {
                case ("categories", .array(let a)?): fields.append(a.compactMap { $0["category"]?.stringValue }.joined(separator: ";"))
                case ("products", .array(let a)?): fields.append(a.compactMap { $0["name"]?.stringValue }.joined(separator: ";"))
                case ("objects", .array(let a)?): fields.append(a.compactMap { $0["label"]?.stringValue }.joined(separator: ";"))
                // Grounding boxes in both frames: the model's 0–1000 and pixels of the original image.
                case ("boxes_2d", _), ("boxes_px", _), ("evidence_2d", _), ("evidence_px", _):
                    let items = (column.hasPrefix("boxes") ? result["objects"] : result["evidence"])?.arrayValue ?? []
                    fields.append(PostProcessing.boxCell(items, key: column.hasSuffix("_2d") ? "bbox_2d" : "bbox_px"))
                case (_, .string(let s)?): fields.append(s)
                case (_, .number(let n)?): fields.append(n.text)
                default: fields.append("")
                }
            }
            fields.append(result.isNull ? "" : result.sortedText)
            out += CSV.line(fields)
        }
        return out
    }
}
