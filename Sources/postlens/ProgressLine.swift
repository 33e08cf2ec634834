import Foundation
import Synchronization

/// The one progress display of the command line, on standard error: a line redrawn in place on a terminal (`\r` and
/// erase-line, at most ten times a second), plain lines at most every `plainInterval` when standard error is not a
/// terminal (logs and CI, where carriage returns turn into noise). Downloads (`TerminalDownloadProgress`), `analyze`
/// (`TerminalBatchProgress`) and `jobs status --wait` all draw through it, so they look and behave alike.
final class ProgressLine: Sendable {
    private struct State {
        var lastDraw: ContinuousClock.Instant?
        /// Length of the line drawn in place (0: none), to be ended before a note.
        var drawn = 0
    }

    let isTerminal: Bool
    let plainInterval: Duration
    private let write: @Sendable (String) -> Void
    private let state = Mutex(State())

    /// - Parameters:
    ///   - isTerminal: whether to redraw in place; by default whether standard error is a TTY.
    ///   - plainInterval: the least time between two plain lines.
    ///   - write: where text goes (standard error; tests capture it).
    init(isTerminal: Bool = isatty(STDERR_FILENO) == 1, plainInterval: Duration = .seconds(5),
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.isTerminal = isTerminal
        self.plainInterval = plainInterval
        self.write = write
    }

    /// Plain lines start one interval from now (when there is a rate worth printing).
    func restartClock() { state.withLock { $0.lastDraw = isTerminal ? nil : .now } }

    /// Shows `line` unless one was shown too recently; `force` always shows it (the last state of a run).
    /// Returns whether it was shown.
    @discardableResult
    func show(_ line: String, force: Bool = false) -> Bool {
        let now = ContinuousClock.now
        let text: String? = state.withLock { s in
            let interval: Duration = isTerminal ? .milliseconds(100) : plainInterval
            if !force, let last = s.lastDraw, now - last < interval { return nil }
            s.lastDraw = now
            guard isTerminal else { return line + "\n" }
            s.drawn = line.count
            return "\r\u{1B}[2K" + line  // back to the line's start, erase it, draw

        }
        if let text { write(text) }
        return text != nil
    }

    /// A message on a line of its own (below a line drawn in place, which is ended first).
    func note(_ message: String) {
        let ended = endLine()
        write(ended + message + "\n")
    }

    /// Ends the line drawn in place, so that what follows starts on a fresh line.
    func finish() {
        let ended = endLine()
        if !ended.isEmpty { write(ended) }
    }

    private func endLine() -> String {
        state.withLock { s in
            defer { s.drawn = 0 }
            return isTerminal && s.drawn > 0 ? "\n" : ""
        }
    }

    // MARK: - Pieces of a line

    /// `[######------------------]` for a fraction in 0...1.
    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let filled = Int(clamped * Double(width))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    /// `m:ss`, or `h:mm:ss` past an hour; `--` when unknown.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
