import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Blob downloads of a `HubSession`: resumable, verified transfers into the hub cache's `blobs/`.
extension HubSession {
    // MARK: Blobs

    /// Hash state carried across resume attempts within one run, so a retry does not re-read the
    /// part of the file that was already hashed.
    struct HashState {
        var sha256 = SHA256()
        var hashedBytes: Int64 = 0
    }

    /// Downloads one file into `blobs/<etag>`: under the blob's lock, into `<etag>.incomplete`
    /// (resumed if present), verified, fsynced and renamed into place. Returns the etag (computed
    /// from the content when the server gave none).
    func downloadBlob(
        _ id: RepoID, commit: String, file: RepoInfo.File, etag knownEtag: String?,
        cache: HubCache, counter: ByteCounter, progress: (any DownloadProgressReporter)?
    ) async throws -> String {
        // Without a known etag the file gets a private temporary name and is named after its git
        // sha1 once complete; there is nothing to resume or lock in that case.
        let partialName = knownEtag ?? "tmp-\(UUID().uuidString.lowercased())"
        let lock = knownEtag != nil
            ? try await FileLock.acquire(cache.lockFile(id, etag: partialName), waiting: { progress?.note($0) }) : nil
        defer { lock?.release() }

        if let etag = knownEtag, let present = FileSystem.fileSize(cache.blob(id, etag: etag)),
           file.expectedSize == nil || present == file.expectedSize {
            return etag  // another process finished it while we waited for the lock
        }

        let partial = cache.incompleteBlob(id, etag: partialName)
        let url = "\(configuration.endpoint)/\(id)/resolve/\(commit)/\(URLPath.encodePath(file.path))"
        var hash = HashState()
        var progressMark = FileSystem.fileSize(partial) ?? 0
        // The plan counted a resumable partial file as done; take it out again, `transfer` adds
        // back whatever it keeps.
        let countedPartial = file.expectedSize.map { progressMark <= $0 } == true ? progressMark : 0
        let startBytes = counter.completed - countedPartial
        do {
            try await withRetries(
                what: file.path, progress: progress,
                madeProgress: {
                    let now = FileSystem.fileSize(partial) ?? 0
                    defer { progressMark = now }
                    return now > progressMark + 1024 * 1024
                }
            ) { _ in
                try await self.transfer(
                    url: url, to: partial, file: file, repo: id, commit: commit, hash: &hash,
                    counter: counter, startBytes: startBytes, progress: progress)
            }
        } catch {
            if knownEtag == nil { try? FileManager.default.removeItem(at: partial) }
            throw error
        }

        // Verify before anything can see the file.
        let size = FileSystem.fileSize(partial) ?? 0
        if let expected = file.expectedSize, size != expected {
            try? FileManager.default.removeItem(at: partial)
            throw HubError.checksumMismatch(file: file.path, expected: "\(expected) bytes", actual: "\(size) bytes")
        }
        let etag: String
        if let lfs = file.lfs {
            let actual = try Self.finishSHA256(hash, file: partial)
            guard actual == lfs.sha256.lowercased() else {
                try? FileManager.default.removeItem(at: partial)
                throw HubError.checksumMismatch(file: file.path, expected: "sha256 \(lfs.sha256.lowercased())", actual: "sha256 \(actual)")
            }
            etag = lfs.sha256.lowercased()
        } else {
            let actual = try Self.gitBlobSHA1(of: partial)
            if let expected = knownEtag, actual != expected {
                try? FileManager.default.removeItem(at: partial)
                throw HubError.checksumMismatch(file: file.path, expected: "git sha1 \(expected)", actual: "git sha1 \(actual)")
            }
            etag = actual
        }
        try Self.fsync(partial)
        try FileSystem.rename(partial, to: cache.blob(id, etag: etag))
        return etag
    }

    /// One attempt: request the bytes after what `partial` holds and append them.
    private func transfer(
        url: String, to partial: URL, file: RepoInfo.File, repo: RepoID, commit: String, hash: inout HashState,
        counter: ByteCounter, startBytes: Int64, progress: (any DownloadProgressReporter)?
    ) async throws {
        var offset = FileSystem.fileSize(partial) ?? 0
        if let expected = file.expectedSize, offset > expected {
            try Self.truncate(partial)  // longer than the file can be: not ours to trust
            offset = 0
        }
        if let expected = file.expectedSize, offset == expected, expected > 0 { return }

        var request = self.request(url)
        if offset > 0 { request.headers.add(name: "Range", value: "bytes=\(offset)-") }
        let response = try await execute(request)

        if response.status == .rangeNotSatisfiable {
            try Self.truncate(partial)
            hash = HashState()
            throw TransientError(description: "the server refused to resume \(file.path); starting it over")
        }
        try checkStatus(response, repo: repo, revision: commit, file: file.path, url: url)

        var expectedBodyLength = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
        if response.status == .partialContent {
            let start = response.headers.first(name: "Content-Range").flatMap(Self.contentRangeStart)
            if start != offset {
                try Self.truncate(partial)
                hash = HashState()
                throw TransientError(description: "the server resumed \(file.path) at the wrong offset; starting it over")
            }
        } else if offset > 0 {
            // The server ignored Range and sends the whole file.
            try Self.truncate(partial)
            offset = 0
            hash = HashState()
        }
        if response.status != .partialContent, expectedBodyLength == nil { expectedBodyLength = file.expectedSize }

        let fd = open(partial.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw HubError.fileSystem("cannot write \(partial.path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard lseek(fd, off_t(offset), SEEK_SET) >= 0, ftruncate(fd, off_t(offset)) == 0 else {
            throw HubError.fileSystem("cannot write \(partial.path): \(String(cString: strerror(errno)))")
        }

        // Bring the hash up to `offset` (bytes from an earlier run are read back once).
        if file.lfs != nil, hash.hashedBytes != offset {
            hash = try Self.hashPrefix(of: partial, length: offset)
        }
        counter.completed = startBytes + offset

        var received: Int64 = 0
        do {
            for try await chunk in response.body {
                try Self.writeAll(fd: fd, chunk, path: partial)
                if file.lfs != nil {
                    chunk.withUnsafeReadableBytes { hash.sha256.update(bufferPointer: $0) }
                    hash.hashedBytes += Int64(chunk.readableBytes)
                }
                received += Int64(chunk.readableBytes)
                counter.completed += Int64(chunk.readableBytes)
                progress?.progressed(completedBytes: counter.completed, currentFile: file.path)
            }
        } catch let error as HubError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TransientError(description: "\(Self.describe(error)) after \(ByteCount.format(offset + received)) of \(file.path)")
        }
        if let length = expectedBodyLength, received < length {
            throw TransientError(description: "the connection ended after \(ByteCount.format(offset + received)) of \(file.path)")
        }
    }

    static func contentRangeStart(_ value: String) -> Int64? {
        // "bytes START-END/TOTAL"
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
        let range = trimmed.dropFirst("bytes ".count)
        guard let dash = range.firstIndex(of: "-") else { return nil }
        return Int64(range[..<dash])
    }

    static func writeAll(fd: Int32, _ buffer: ByteBuffer, path: URL) throws {
        try buffer.withUnsafeReadableBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    let reason = errno == ENOSPC ? "the disk is full" : String(cString: strerror(errno))
                    throw HubError.fileSystem("cannot write \(path.path): \(reason)")
                }
                done += n
            }
        }
    }

    static func truncate(_ url: URL) throws {
        if FileManager.default.fileExists(atPath: url.path), Glibc_truncate(url.path, 0) != 0 {
            throw HubError.fileSystem("cannot reset \(url.path): \(String(cString: strerror(errno)))")
        }
    }

    static func fsync(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HubError.fileSystem("cannot open \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        #if canImport(Darwin)
        _ = Darwin.fsync(fd)
        #elseif canImport(Glibc)
        _ = Glibc.fsync(fd)
        #else
        _ = Musl.fsync(fd)
        #endif
    }

    /// Reads `url` in 8 MiB chunks, calling `body` with each.
    static func readChunks(of url: URL, limit: Int64? = nil, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw HubError.fileSystem("cannot read \(url.path)")
        }
        defer { try? handle.close() }
        var left = limit ?? Int64.max
        while left > 0 {
            let data = try handle.read(upToCount: Int(min(left, 8 * 1024 * 1024))) ?? Data()
            if data.isEmpty { break }
            data.withUnsafeBytes { body($0) }
            left -= Int64(data.count)
        }
    }

    static func hashPrefix(of url: URL, length: Int64) throws -> HashState {
        var state = HashState()
        guard length > 0 else { return state }
        try readChunks(of: url, limit: length) { bytes in
            state.sha256.update(bufferPointer: bytes)
            state.hashedBytes += Int64(bytes.count)
        }
        return state
    }

    /// The sha256 of the file; reuses the streaming hash when it covered the whole file.
    static func finishSHA256(_ state: HashState, file: URL) throws -> String {
        let size = FileSystem.fileSize(file) ?? 0
        let final = state.hashedBytes == size ? state : try hashPrefix(of: file, length: size)
        return final.sha256.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// sha1 of `"blob <size>\0" + content`: the id git (and the Hub) gives a regular file, and
    /// the name `huggingface_hub` gives its blob in the cache.
    static func gitBlobSHA1(of url: URL) throws -> String {
        let size = FileSystem.fileSize(url) ?? 0
        var sha1 = Insecure.SHA1()
        sha1.update(data: Data("blob \(size)\0".utf8))
        try readChunks(of: url) { sha1.update(bufferPointer: $0) }
        return sha1.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// `truncate(2)` from whichever C library this platform has.
@inline(__always)
private func Glibc_truncate(_ path: String, _ length: off_t) -> Int32 {
    #if canImport(Darwin)
    return Darwin.truncate(path, length)
    #elseif canImport(Glibc)
    return Glibc.truncate(path, length)
    #else
    return Musl.truncate(path, length)
    #endif
}
