import Foundation

/// A record's image named by a local path: where it is, and its bytes with the checks every reader makes (present,
/// not a folder, within the size budget). Shared by `TaskRunner` (reading at run time) and `JobSubmission` (copying
/// into a job at submission), so both refuse the same files with the same words.
enum LocalImageFile {
    /// `file://` URLs and absolute paths as they are; anything else relative to `base`.
    static func path(of reference: String, base: URL?) -> String {
        if reference.hasPrefix("file://"), let url = URL(string: reference) { return url.path }
        if reference.hasPrefix("/") { return reference }
        return (base ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).appendingPathComponent(reference).standardizedFileURL.path
    }

    /// The path after the checks; throws the item's error (`image not found: …`, `image too large (N bytes): …`).
    static func checkedPath(of reference: String, base: URL?, maxBytes: Int) throws -> String {
        let path = path(of: reference, base: base)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TaskError("image not found: \(reference)")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= maxBytes else { throw TaskError("image too large (\(size) bytes): \(reference)") }
        return path
    }

    static func read(_ reference: String, base: URL?, maxBytes: Int) throws -> Data {
        let path = try checkedPath(of: reference, base: base, maxBytes: maxBytes)
        guard let contents = FileManager.default.contents(atPath: path) else { throw TaskError("cannot read image \(reference)") }
        return contents
    }
}
