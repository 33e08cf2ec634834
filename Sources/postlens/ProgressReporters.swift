import Analysis
import Foundation
import Hub
import Synchronization

/// Download progress (`download`, and any `--model REPO` fetched on first use) on the command line's progress line:
/// `[#####-----]  45.0%  1.93 GB / 4.27 GB  52.10 MB/s  ETA 0:45  model.safetensors`.
final class TerminalDownloadProgress: DownloadProgressReporter {
    private struct State {
        var total: Int64 = 0
        var startBytes: Int64 = 0
        var startTime: ContinuousClock.Instant = .now
        /// Recent (time, bytes) samples, for a speed that follows changes.
        var samples: [(ContinuousClock.Instant, Int64)] = []
    }

    let line: ProgressLine
    private let state = Mutex(State())

    init(line: ProgressLine = ProgressLine()) { self.line = line }

    func started(repo: String, fileCount: Int, totalBytes: Int64, completedBytes: Int64) {
        state.withLock { s in
            s.total = totalBytes
            s.startBytes = completedBytes
            s.startTime = .now
            s.samples = [(.now, completedBytes)]
        }
        line.restartClock()
        var text = "Downloading \(repo): \(fileCount) file\(fileCount == 1 ? "" : "s"), \(ByteCount.format(totalBytes))"
        if completedBytes > 0 { text += " (\(ByteCount.format(completedBytes)) already here)" }
        line.note(text)
    }

    func progressed(completedBytes: Int64, currentFile: String) {
        let now = ContinuousClock.now
        let (total, speed) = state.withLock { s in
            s.samples.append((now, completedBytes))
            while s.samples.count > 2, let first = s.samples.first, now - first.0 > .seconds(10) { s.samples.removeFirst() }
            return (s.total, Self.speed(s.samples))
        }
        line.show(Self.render(completed: completedBytes, total: total, bytesPerSecond: speed, file: currentFile, bar: line.isTerminal))
    }

    func note(_ message: String) { line.note(message) }

    func finished(completedBytes: Int64) {
        let (elapsed, fresh) = state.withLock { s in (ContinuousClock.now - s.startTime, completedBytes - s.startBytes) }
        let seconds = ProgressLine.seconds(elapsed)
        let rate = seconds > 0 ? Double(fresh) / seconds : 0
        line.note("Downloaded \(ByteCount.format(fresh)) in \(ProgressLine.duration(seconds))"
                  + (fresh > 0 && seconds > 0 ? " (\(ByteCount.format(Int64(rate)))/s)" : ""))
    }

    /// One progress line; `bytesPerSecond` is nil while too little time has passed to measure a speed.
    static func render(completed: Int64, total: Int64, bytesPerSecond: Double?, file: String, bar: Bool) -> String {
        let fraction = total > 0 ? Double(completed) / Double(total) : 0
        var parts: [String] = []
        if bar { parts.append(ProgressLine.bar(fraction)) }
        parts.append(String(format: "%5.1f%%", min(1, max(0, fraction)) * 100))
        parts.append("\(ByteCount.format(completed)) / \(ByteCount.format(total))")
        parts.append(bytesPerSecond.map { "\(ByteCount.format(Int64($0)))/s" } ?? "--/s")
        if let bytesPerSecond, bytesPerSecond > 0, total > completed {
            parts.append("ETA " + ProgressLine.duration(Double(total - completed) / bytesPerSecond))
        } else {
            parts.append("ETA --")
        }
        parts.append(file)
        return parts.joined(separator: "  ")
    }

    /// Bytes per second over the recent samples, or nil if they span less than half a second.
    static func speed(_ samples: [(ContinuousClock.Instant, Int64)]) -> Double? {
        guard let first = samples.first, let last = samples.last else { return nil }
        let seconds = ProgressLine.seconds(last.0 - first.0)
        return seconds >= 0.5 ? Double(last.1 - first.1) / seconds : nil
    }
}

/// `postlens analyze`'s progress on the command line's progress line:
/// `[#########-----------] 45/200 items, 1 failed, 2.30 items/s, ETA 1:07`.
final class TerminalBatchProgress: BatchProgressReporter {
    let line: ProgressLine

    init(line: ProgressLine = ProgressLine(plainInterval: .seconds(10))) { self.line = line }

    func began(total: Int, alreadyDone: Int) {
        line.restartClock()
        if alreadyDone > 0 { line.note("resuming: \(alreadyDone) of \(total) items already done") }
    }

    func progressed(done: Int, failed: Int, total: Int, itemsPerSecond: Double?, etaSeconds: Double?) {
        line.show(Self.render(done: done, failed: failed, total: total, itemsPerSecond: itemsPerSecond, etaSeconds: etaSeconds,
                              bar: line.isTerminal),
                  force: done == total)
    }

    func finished() { line.finish() }

    static func render(done: Int, failed: Int, total: Int, itemsPerSecond: Double?, etaSeconds: Double?, bar: Bool) -> String {
        var s = bar ? ProgressLine.bar(total > 0 ? Double(done) / Double(total) : 1) + " " : ""
        s += "\(done)/\(total) items"
        if failed > 0 { s += ", \(failed) failed" }
        if let itemsPerSecond { s += String(format: ", %.2f items/s", itemsPerSecond) }
        if let etaSeconds, done < total, etaSeconds.isFinite { s += ", ETA " + ProgressLine.duration(etaSeconds) }
        return s
    }
}
