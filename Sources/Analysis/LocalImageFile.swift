import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A record's image named by a local path: where it is, and its bytes with the checks every reader makes (present,
/// a regular file, within the size budget, and — unless the input is trusted — inside the input's folder after `..`
/// and symlinks are resolved). Shared by `TaskRunner` (reading at run time) and `JobSubmission` (copying into a job at
/// submission), so both refuse the same files with the same words.
enum LocalImageFile {
    /// `file://` URLs and absolute paths as they are; anything else relative to `base`.
    static func path(of reference: String, base: URL) -> String {
        if reference.hasPrefix("file://"), let url = URL(string: reference) { return url.path }
        if reference.hasPrefix("/") { return reference }
        return base.appendingPathComponent(reference).path
    }

    /// The file's canonical path after the checks; throws the item's error (`image not found: …`, `image … is outside
    /// the input's folder …`, `image too large (N bytes): …`). `base` (default: the working folder) is the input's
    /// folder; `confined`: the file must lie inside it (`RunOptions.trustInput` off).
    static func checkedPath(of reference: String, base: URL?, maxBytes: Int, confined: Bool) throws -> String {
        let base = base ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        guard let resolved = realPath(path(of: reference, base: base)) else { throw TaskError("image not found: \(reference)") }
        if confined {
            let root = (realPath(base.path) ?? base.path).trimmingSuffix("/") + "/"
            guard resolved.hasPrefix(root) else {
                throw TaskError("image \(reference) is outside the input's folder \(root); use --trust-input for trusted input")
            }
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: resolved)
        guard attributes?[.type] as? FileAttributeType == .typeRegular else { throw TaskError("image is not a regular file: \(reference)") }
        let size = (attributes?[.size] as? Int) ?? 0
        guard size <= maxBytes else { throw TaskError("image too large (\(size) bytes): \(reference)") }
        return resolved
    }

    static func read(_ reference: String, base: URL?, maxBytes: Int, confined: Bool) throws -> Data {
        let path = try checkedPath(of: reference, base: base, maxBytes: maxBytes, confined: confined)
        guard let contents = FileManager.default.contents(atPath: path) else { throw TaskError("cannot read image \(reference)") }
        return contents
    }

    /// The canonical absolute path (`realpath(3)`: no `..`, no symlinks), or nil if it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
