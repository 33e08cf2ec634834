import Foundation
import Synchronization
import Testing
@testable import postlens

/// The command line's one progress display, as downloads, `analyze` and `jobs status` draw it.
@Suite struct ProgressLineTests {
    final class Sink: Sendable {
        private let text = Mutex("")
        func append(_ s: String) { text.withLock { $0 += s } }
        var value: String { text.withLock { $0 } }
    }

    @Test func downloadLineShowsPercentBytesSpeedAndETA() {
        let line = TerminalDownloadProgress.render(completed: 1_000_000_000, total: 4_000_000_000, bytesPerSecond: 50_000_000,
                                                   file: "model.safetensors", bar: true)
        #expect(line == "[######------------------]   25.0%  1.00 GB / 4.00 GB  50.00 MB/s  ETA 1:00  model.safetensors")
        #expect(TerminalDownloadProgress.render(completed: 0, total: 10, bytesPerSecond: nil, file: "f", bar: false)
            == "  0.0%  0 B / 10 B  --/s  ETA --  f")
    }

    @Test func batchLineShowsItemsFailuresRateAndETA() {
        #expect(TerminalBatchProgress.render(done: 45, failed: 1, total: 200, itemsPerSecond: 2.3, etaSeconds: 67.4, bar: false)
            == "45/200 items, 1 failed, 2.30 items/s, ETA 1:07")
        #expect(TerminalBatchProgress.render(done: 200, failed: 0, total: 200, itemsPerSecond: 2, etaSeconds: 0, bar: true)
            == "[########################] 200/200 items, 2.00 items/s")
    }

    @Test func durationsAndBars() {
        #expect(ProgressLine.duration(3725) == "1:02:05")
        #expect(ProgressLine.duration(59.6) == "1:00")
        #expect(ProgressLine.duration(.infinity) == "--")
        #expect(ProgressLine.bar(0.5, width: 4) == "[##--]")
        #expect(ProgressLine.bar(7, width: 4) == "[####]")
    }

    /// Not a terminal: no carriage returns; a line at most every interval, and the last state always.
    @Test func plainLinesAreThrottledAndTheLastOneAlwaysShows() {
        let sink = Sink()
        let progress = TerminalBatchProgress(line: ProgressLine(isTerminal: false, plainInterval: .seconds(3600), write: sink.append))
        progress.began(total: 12, alreadyDone: 2)
        for i in 3...12 { progress.progressed(done: i, failed: 0, total: 12, itemsPerSecond: 1, etaSeconds: Double(12 - i)) }
        progress.finished()
        #expect(sink.value == "resuming: 2 of 12 items already done\n12/12 items, 1.00 items/s\n")
    }

    /// A terminal: the line is redrawn in place (erased first), and ended before a note.
    @Test func terminalLinesAreRedrawnInPlace() {
        let sink = Sink()
        let line = ProgressLine(isTerminal: true, write: sink.append)
        line.show("long line", force: true)
        line.show("short", force: true)
        line.note("a note")
        line.finish()
        #expect(sink.value == "\r\u{1B}[2Klong line\r\u{1B}[2Kshort\na note\n")
    }
}
