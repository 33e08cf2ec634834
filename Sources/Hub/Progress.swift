import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives download progress. `HubClient` calls it from one task at a time, in order:
/// `started`, any number of `progressed` and `note`, then `finished` (not called on failure).
public protocol DownloadProgressReporter: Sendable {
    /// `totalBytes` counts every file of the snapshot; `completedBytes` those already on disk
    /// (cached blobs and partial files being resumed).
    func started(repo: String, fileCount: Int, totalBytes: Int64, completedBytes: Int64)
    /// Called for every chunk received; implementations throttle their own output.
    func progressed(completedBytes: Int64, currentFile: String)
    /// A one-line remark worth showing (a retry, a fallback to the cache).
    func note(_ message: String)
    func finished(completedBytes: Int64)
}

/// The progress display of `postlens download`, written to standard error.
///
/// On a terminal it redraws one line in place (`\r`) with a bar, bytes, speed and ETA, at most
/// ten times a second. When standard error is not a terminal (CI logs, `2> file`) it prints a plain
/// line every `plainInterval` instead, because carriage returns turn logs into noise.
public final class TerminalProgressReporter: DownloadProgressReporter {
    private struct State {
        var total: Int64 = 0
        var startBytes: Int64 = 0
        var startTime: ContinuousClock.Instant = .now
        var lastDraw: ContinuousClock.Instant?
        var lastLineLength = 0
        /// Recent (time, bytes) samples, for a speed that follows changes.
        var samples: [(ContinuousClock.Instant, Int64)] = []
    }

    private let state = Mutex(State())
    private let isTerminal: Bool
    private let plainInterval: Duration
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - isTerminal: whether to redraw in place; defaults to whether standard error is a TTY.
    ///   - plainInterval: time between two plain lines when not on a terminal.
    ///   - write: where text goes (standard error by default; tests capture it).
    public init(
        isTerminal: Bool = isatty(STDERR_FILENO) == 1,
        plainInterval: Duration = .seconds(5),
        write: @escaping @Sendable (String) -> Void = { text in FileHandle.standardError.write(Data(text.utf8)) }
    ) {
        self.isTerminal = isTerminal
        self.plainInterval = plainInterval
        self.write = write
    }

    public func started(repo: String, fileCount: Int, totalBytes: Int64, completedBytes: Int64) {
        state.withLock { s in
            s.total = totalBytes
            s.startBytes = completedBytes
            s.startTime = .now
            s.samples = [(.now, completedBytes)]
            // Plain lines start one interval in, when there is a speed worth printing.
            s.lastDraw = isTerminal ? nil : .now
        }
        var line = "Downloading \(repo): \(fileCount) file\(fileCount == 1 ? "" : "s"), \(ByteCount.format(totalBytes))"
        if completedBytes > 0 { line += " (\(ByteCount.format(completedBytes)) already here)" }
        write(line + "\n")
    }

    public func progressed(completedBytes: Int64, currentFile: String) {
        let now = ContinuousClock.now
        let text: String? = state.withLock { s in
            let interval: Duration = isTerminal ? .milliseconds(100) : plainInterval
            if let last = s.lastDraw, now - last < interval { return nil }
            s.lastDraw = now
            s.samples.append((now, completedBytes))
            while s.samples.count > 2, let first = s.samples.first, now - first.0 > .seconds(10) { s.samples.removeFirst() }
            let speed = Self.speed(s.samples)
            let line = Self.render(completed: completedBytes, total: s.total, bytesPerSecond: speed, file: currentFile, bar: isTerminal)
            if isTerminal {
                let padding = max(0, s.lastLineLength - line.count)
                s.lastLineLength = line.count
                return "\r" + line + String(repeating: " ", count: padding)
            }
            return line + "\n"
        }
        if let text { write(text) }
    }

    public func note(_ message: String) {
        let clear = state.withLock { s -> Bool in
            defer { s.lastLineLength = 0 }
            return isTerminal && s.lastLineLength > 0
        }
        write((clear ? "\n" : "") + message + "\n")
    }

    public func finished(completedBytes: Int64) {
        let (elapsed, fresh, hadLine) = state.withLock { s in
            (ContinuousClock.now - s.startTime, completedBytes - s.startBytes, s.lastLineLength > 0)
        }
        let seconds = Self.seconds(elapsed)
        let rate = seconds > 0 ? Double(fresh) / seconds : 0
        let summary = "Downloaded \(ByteCount.format(fresh)) in \(Self.formatDuration(seconds))"
            + (fresh > 0 && seconds > 0 ? " (\(ByteCount.format(Int64(rate)))/s)" : "")
        write((isTerminal && hadLine ? "\n" : "") + summary + "\n")
    }

    /// One progress line, e.g. `[#####-----]  45.0%  1.93 GB / 4.27 GB  52.10 MB/s  ETA 0:45  model.safetensors`.
    /// `bytesPerSecond` is nil while too little time has passed to measure a speed.
    public static func render(completed: Int64, total: Int64, bytesPerSecond: Double?, file: String, bar: Bool) -> String {
        let fraction = total > 0 ? min(1, max(0, Double(completed) / Double(total))) : 0
        var parts: [String] = []
        if bar {
            let width = 24
            let filled = Int(fraction * Double(width))
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]")
        }
        parts.append(String(format: "%5.1f%%", fraction * 100))
        parts.append("\(ByteCount.format(completed)) / \(ByteCount.format(total))")
        parts.append(bytesPerSecond.map { "\(ByteCount.format(Int64($0)))/s" } ?? "--/s")
        if let bytesPerSecond, bytesPerSecond > 0, total > completed {
            parts.append("ETA " + formatDuration(Double(total - completed) / bytesPerSecond))
        } else {
            parts.append("ETA --")
        }
        parts.append(file)
        return parts.joined(separator: "  ")
    }

    /// `m:ss`, or `h:mm:ss` past an hour.
    public static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }

    /// Bytes per second over the recent samples, or nil if they span less than half a second.
    static func speed(_ samples: [(ContinuousClock.Instant, Int64)]) -> Double? {
        guard let first = samples.first, let last = samples.last else { return nil }
        let seconds = Self.seconds(last.0 - first.0)
        return seconds >= 0.5 ? Double(last.1 - first.1) / seconds : nil
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
