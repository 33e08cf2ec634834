import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Hugging Face hub cache layout, exactly as `huggingface_hub` writes and reads it:
///
///     <root>/models--org--name/
///         blobs/<etag>                  file contents; etag = LFS sha256, or git blob sha1 for small files
///         blobs/<etag>.incomplete       a download in progress (resumed with HTTP Range)
///         snapshots/<commit>/<path>     relative symlink to ../../blobs/<etag> (one more ../ per subfolder)
///         refs/<revision>               the commit hash a branch or tag pointed to when last fetched
///     <root>/.locks/models--org--name/<etag>.lock   flock(2) lock held while a blob is written
///
/// Sharing the layout (and the lock files) means a model fetched by Python tools is reused, and
/// one fetched by PostLens is usable by them.
public struct HubCache: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public func repoFolder(_ repo: RepoID) -> URL { root.appendingPathComponent(repo.cacheFolderName, isDirectory: true) }
    public func blobsFolder(_ repo: RepoID) -> URL { repoFolder(repo).appendingPathComponent("blobs", isDirectory: true) }
    public func blob(_ repo: RepoID, etag: String) -> URL { blobsFolder(repo).appendingPathComponent(etag) }
    public func incompleteBlob(_ repo: RepoID, etag: String) -> URL { blobsFolder(repo).appendingPathComponent(etag + ".incomplete") }
    public func snapshotFolder(_ repo: RepoID, commit: String) -> URL {
        repoFolder(repo).appendingPathComponent("snapshots", isDirectory: true).appendingPathComponent(commit, isDirectory: true)
    }
    public func refFile(_ repo: RepoID, revision: String) -> URL {
        repoFolder(repo).appendingPathComponent("refs", isDirectory: true).appendingPathComponent(revision)
    }
    func lockFile(_ repo: RepoID, etag: String) -> URL {
        root.appendingPathComponent(".locks", isDirectory: true)
            .appendingPathComponent(repo.cacheFolderName, isDirectory: true)
            .appendingPathComponent(etag + ".lock")
    }

    /// The commit a revision stands for in the cache: the revision itself if it is a commit hash,
    /// else the content of `refs/<revision>`.
    public func commit(for revision: String, in repo: RepoID) -> String? {
        if PathRules.isCommitHash(revision) { return revision }
        guard PathRules.isSafeRevision(revision),
              let text = try? String(contentsOf: refFile(repo, revision: revision), encoding: .utf8)
        else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return PathRules.isCommitHash(commit) ? commit : nil
    }

    /// The snapshot folder for `revision` if the cache has one (complete or not: see `ModelLocator`).
    public func cachedSnapshot(_ repo: RepoID, revision: String) -> URL? {
        guard let commit = commit(for: revision, in: repo) else { return nil }
        let folder = snapshotFolder(repo, commit: commit)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return folder
    }

    /// Records which commit a branch or tag points to; written to a temporary file and renamed,
    /// so a concurrent reader never sees a half-written ref.
    func writeRef(_ repo: RepoID, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let ref = refFile(repo, revision: revision)
        if let current = try? String(contentsOf: ref, encoding: .utf8), current == commit { return }
        try FileSystem.createDirectory(ref.deletingLastPathComponent())
        let temporary = ref.deletingLastPathComponent().appendingPathComponent(".\(ref.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        do {
            try Data(commit.utf8).write(to: temporary)
            try FileSystem.rename(temporary, to: ref)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw HubError.fileSystem("cannot write \(ref.path): \(error)")
        }
    }

    /// Points `snapshots/<commit>/<path>` at `blobs/<etag>` with a relative symlink (so the cache
    /// folder can be moved or copied), replacing whatever was there through a rename so the entry
    /// is never missing or half made.
    func linkSnapshotFile(_ repo: RepoID, commit: String, path: String, etag: String) throws {
        let snapshot = snapshotFolder(repo, commit: commit)
        let destination = snapshot.appendingPathComponent(path)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: destination.path), existing == target {
            return
        }
        let folder = destination.deletingLastPathComponent()
        try FileSystem.createDirectory(folder)
        let temporary = folder.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString.prefix(8)).link")
        guard symlink(target, temporary.path) == 0 else {
            throw HubError.fileSystem("cannot create the link \(temporary.path): \(String(cString: strerror(errno)))")
        }
        do {
            try FileSystem.rename(temporary, to: destination)
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    /// Whether `snapshots/<commit>/<path>` exists and leads to a regular file (a dangling link,
    /// left when a blob was deleted, does not count).
    func hasSnapshotFile(_ repo: RepoID, commit: String, path: String) -> Bool {
        FileSystem.isRegularFile(snapshotFolder(repo, commit: commit).appendingPathComponent(path))
    }
}

/// Thin wrappers over POSIX calls that Foundation does not expose the way we need them
/// (atomic rename over an existing file, free space, sizes without following links).
enum FileSystem {
    static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw HubError.fileSystem("cannot create the folder \(url.path): \(error.localizedDescription)")
        }
    }

    /// rename(2): atomic on one file system, replaces the destination.
    static func rename(_ source: URL, to destination: URL) throws {
        #if canImport(Glibc)
        let result = Glibc.rename(source.path, destination.path)
        #elseif canImport(Musl)
        let result = Musl.rename(source.path, destination.path)
        #else
        let result = Darwin.rename(source.path, destination.path)
        #endif
        guard result == 0 else {
            throw HubError.fileSystem("cannot move \(source.path) to \(destination.path): \(String(cString: strerror(errno)))")
        }
    }

    /// Size of a file in bytes (following links), or nil if there is none.
    static func fileSize(_ url: URL) -> Int64? {
        var info = stat()
        guard stat(url.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    static func isRegularFile(_ url: URL) -> Bool { fileSize(url) != nil }

    /// Bytes available to an unprivileged user on the file system holding `url` (or its closest
    /// existing parent).
    static func availableSpace(at url: URL) -> Int64? {
        var path = url
        while !FileManager.default.fileExists(atPath: path.path), path.pathComponents.count > 1 {
            path = path.deletingLastPathComponent()
        }
        var info = statvfs()
        guard statvfs(path.path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}

/// An exclusive flock(2) on a lock file, the same kind of lock Python's `filelock` takes, so two
/// downloaders (PostLens or `huggingface_hub`) never write the same blob at once.
final class FileLock {
    private var descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// Waits (without blocking a thread) until the lock is ours.
    static func acquire(_ url: URL, waiting: (String) -> Void = { _ in }) async throws -> FileLock {
        try FileSystem.createDirectory(url.deletingLastPathComponent())
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw HubError.fileSystem("cannot open the lock file \(url.path): \(String(cString: strerror(errno)))")
        }
        var announced = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                close(fd)
                throw HubError.fileSystem("cannot lock \(url.path): \(String(cString: strerror(errno)))")
            }
            if !announced {
                announced = true
                waiting("waiting for another download of the same file to finish (\(url.lastPathComponent))")
            }
            do {
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                close(fd)
                throw error
            }
        }
        return FileLock(descriptor: fd)
    }

    func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
