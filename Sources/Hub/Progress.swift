import Foundation

/// Receives download progress (the command line draws it as a progress bar; `serve` also reports it on `/health`).
/// `HubClient` calls it from one task at a time, in order: `started`, any number of `progressed` and `note`, then `finished` (not called on failure).
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

/// A duration in seconds.
func durationSeconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
