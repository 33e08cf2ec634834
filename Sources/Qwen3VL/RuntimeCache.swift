import Crypto
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif
import Kernels
import SafeTensors
import Tensors

// MARK: - Public surface

/// Where the runtime-format weight cache lives. `Qwen3VLModel(directory:format:runtimeCache:)` takes
/// one (nil disables the cache); the default is `environment`: `$POSTLENS_CACHE/runtime`, else
/// `~/.cache/postlens/runtime`. Only the quantized formats are cached (F32 is the reference path and
/// its conversion is a plain BF16 widening).
public struct RuntimeCacheOptions: Sendable, Equatable {
    public var directory: URL

    public init(directory: URL) {
        self.directory = directory
    }

    public static var environment: RuntimeCacheOptions {
        let base = ProcessInfo.processInfo.environment["POSTLENS_CACHE"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/postlens")
        return RuntimeCacheOptions(directory: base.appendingPathComponent("runtime"))
    }
}

/// What a load did: whether the weights came from the runtime cache, how many checkpoint tensors were
/// converted from their on-disk dtype, and the cache file read or written (nil when none was).
public struct LoadReport: Sendable, Equatable {
    public var usedRuntimeCache: Bool
    public var wroteRuntimeCache: Bool
    public var convertedTensors: Int
    public var cacheFile: URL?

    public init(usedRuntimeCache: Bool = false, wroteRuntimeCache: Bool = false, convertedTensors: Int = 0, cacheFile: URL? = nil) {
        self.usedRuntimeCache = usedRuntimeCache
        self.wroteRuntimeCache = wroteRuntimeCache
        self.convertedTensors = convertedTensors
        self.cacheFile = cacheFile
    }
}

/// The runtime-format weight cache: the result of converting a BF16 checkpoint to Q8/Q4 (plus its F32
/// norms, biases and position table), saved once and read back on later loads.
///
/// Key (`key(for:format:)`): `formatVersion`, the weight format, a hash of `config.json`, and for each
/// `*.safetensors` file its name, size and a cheap content identity: the LFS sha256 when the file is a
/// symlink into a Hugging Face cache blob (`…/blobs/<sha256>`: the blob's name *is* its content hash,
/// so nothing is read), else size + mtime (ns) + inode + SHA-256 of the first and last MiB (a rewrite
/// in place changes mtime; a copy changes the inode; a same-size edit that keeps both — rare — is
/// caught only if it touches the ends). The file name is the SHA-256 of the key, `<hex>.plw`; the
/// whole key is stored in the file and compared too.
///
/// File layout (little-endian, see `Header`): a 64-byte header, the key, a table of entries (name,
/// kind, shape, one or two byte segments, a sample checksum), then the payload, every segment 64-byte
/// aligned: Q8/Q4 `quants` then `scales`, exactly as in memory; F32 tensors as raw floats.
///
/// Validation on read: magic, version, byte order, a checksum of the header, the recorded file length
/// against the real one (a truncated file fails here), the key, a checksum of the table, every segment
/// inside the file with the length its kind and shape imply, and per entry a checksum of the first and
/// last 4 KiB of each segment. The payload is not hashed in full: that would cost a pass over ≈ 2.4 GB
/// (≈ 0.5–1 s on two cores) on every start, and the failures that matter for a derived file written by
/// temp-file + fsync + rename are truncation, version skew and a stale source, which the checks above
/// catch; silent corruption in the middle of a segment is not detected (delete the folder to rebuild).
public enum RuntimeCache {
    /// Bump when the on-disk layout, a quantized layout or the quantizers change.
    public static let formatVersion: UInt32 = 2
    static let magic: [UInt8] = Array("PLWCACHE".utf8)
    static let byteOrderMark: UInt32 = 0x0102_0304
    static let headerSize = 64
    static let alignment = 64
    static let sampleBytes = 4096

    enum Kind: UInt8 { case f32 = 0, q8 = 1, q4 = 2 }

    /// The cache key of a store's files in `format` (see the type's documentation).
    static func key(for store: WeightStore, format: WeightFormat, q8Layout: Q8Layout = .preferred) throws -> String {
        var parts = ["postlens-runtime-cache v\(formatVersion)", "format=\(format.rawValue)"]
        // Q8 panels are stored in the order the CPU level's kernels read (`Q8Layout`): one file per layout.
        if format == .q8 { parts.append("layout=\(q8Layout.rawValue)") }
        let config = store.directory.appendingPathComponent("config.json")
        if let data = try? Data(contentsOf: config) {
            parts.append("config.json sha256=\(SHA256Digest.hex(of: data))")
        }
        for file in store.files.map(\.file.url).sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
            parts.append("\(file.lastPathComponent) \(try identity(of: file))")
        }
        return parts.joined(separator: "\n")
    }

    /// `size=… lfs=<sha256>` for a Hugging Face blob symlink, else `size=… mtime=… inode=… ends=<sha256>`.
    static func identity(of url: URL) throws -> String {
        var info = stat()
        guard stat(url.path, &info) == 0 else { throw CacheError("cannot stat \(url.path): \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        let resolved = url.resolvingSymlinksInPath()
        let blob = resolved.lastPathComponent
        if resolved.path != url.path, resolved.deletingLastPathComponent().lastPathComponent == "blobs",
           blob.count == 64, blob.allSatisfy(\.isHexDigit) {
            return "size=\(size) lfs=\(blob.lowercased())"
        }
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        return "size=\(size) mtime=\(mtime) inode=\(info.st_ino) ends=\(try endsDigest(url, size: size))"
    }

    /// SHA-256 of the first and the last MiB of a file (the whole file when smaller than 2 MiB).
    static func endsDigest(_ url: URL, size: Int) throws -> String {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw CacheError("cannot open \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let window = 1 << 20
        var ranges = [0..<min(size, window)]
        if size > window { ranges.append(max(window, size - window)..<size) }
        var hasher = SHA256Digest()
        var buffer = [UInt8](repeating: 0, count: window)
        for range in ranges {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, range.count, off_t(range.lowerBound)) }
            guard n == range.count else { throw CacheError("short read of \(url.path)") }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return SHA256Digest.hexString(hasher.finalize())
    }

    /// The cache file a load of the model folder in `format` reads or writes (it may not exist).
    public static func file(forModelAt directory: URL, format: WeightFormat,
                            options: RuntimeCacheOptions = .environment) throws -> URL {
        fileURL(key: try key(for: try WeightStore(directory: directory), format: format), options: options)
    }

    static func fileURL(key: String, options: RuntimeCacheOptions) -> URL {
        options.directory.appendingPathComponent(SHA256Digest.hex(of: Data(key.utf8)) + ".plw")
    }

    /// Starts a load: opens a valid cache file for reading, or prepares to record one. Never throws;
    /// problems are reported as one line on stderr and the load goes on without the cache.
    static func begin(store: WeightStore, format: WeightFormat, options: RuntimeCacheOptions?) -> LoadSession {
        let layout = Q8Layout.preferred
        guard format != .f32, let options else { return LoadSession(q8Layout: layout) }
        let key: String
        do { key = try self.key(for: store, format: format, q8Layout: layout) } catch {
            warn("runtime cache disabled: \(error)")
            return LoadSession(q8Layout: layout)
        }
        let url = fileURL(key: key, options: options)
        if FileManager.default.fileExists(atPath: url.path) {
            do {
                return LoadSession(reader: try RuntimeCacheReader(url: url, key: key, q8Layout: layout), url: url,
                                   q8Layout: layout)
            } catch {
                warn("runtime cache \(url.lastPathComponent) is invalid (\(error)); rebuilding it")
                try? FileManager.default.removeItem(at: url)
            }
        }
        return LoadSession(writer: RuntimeCacheWriter(key: key), url: url, q8Layout: layout)
    }

    static func warn(_ line: String) {
        Logger(label: "postlens.runtime-cache").warning("\(line)")
    }

    /// 64-bit checksum (word-wise multiply-xorshift; not cryptographic, just cheap and well mixed).
    static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* 0xFF51_AFD7_ED55_8CCD)
        guard let base = bytes.baseAddress else { return h }
        let words = bytes.count / 8
        for i in 0..<words {
            let w = base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
            h = (h ^ w) &* 0x1000_0000_01B3 &+ 0xC4CE_B9FE_1A85_EC53
            h ^= h >> 29
        }
        for i in (words * 8)..<bytes.count {
            h = (h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self))) &* 0x1000_0000_01B3
        }
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        return h ^ (h >> 33)
    }

    /// Checksum of the first and the last `sampleBytes` of each segment.
    static func sampleChecksum(_ segments: [UnsafeRawBufferPointer]) -> UInt64 {
        var h: UInt64 = 0x5bd1_e995
        for s in segments {
            let head = min(s.count, sampleBytes)
            h = checksum(UnsafeRawBufferPointer(rebasing: s[0..<head]), seed: h)
            h = checksum(UnsafeRawBufferPointer(rebasing: s[(s.count - head)..<s.count]), seed: h)
        }
        return h
    }
}

struct CacheError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Load session (used by TensorReader)

/// One load's cache state: a reader (weights come from the cache), a writer (converted weights are
/// recorded and written at the end), or neither; counts the tensors converted from the checkpoint.
final class LoadSession: @unchecked Sendable {
    let reader: RuntimeCacheReader?
    let writer: RuntimeCacheWriter?
    let url: URL?
    /// The byte order of Q8 matrices in this load: the active CPU level's (and part of the cache key).
    let q8Layout: Q8Layout
    var convertedTensors = 0
    var cacheMisses = 0

    init(reader: RuntimeCacheReader? = nil, writer: RuntimeCacheWriter? = nil, url: URL? = nil,
         q8Layout: Q8Layout = .preferred) {
        self.reader = reader
        self.writer = writer
        self.url = url
        self.q8Layout = q8Layout
    }

    /// Writes the recorded cache (if any) and says what happened.
    func finish() -> LoadReport {
        var report = LoadReport(usedRuntimeCache: reader != nil, convertedTensors: convertedTensors,
                                cacheFile: reader != nil ? url : nil)
        if reader != nil, cacheMisses > 0 {
            RuntimeCache.warn("runtime cache \(url?.lastPathComponent ?? "") lacked \(cacheMisses) tensors; they were converted")
        }
        if let writer, let url {
            do {
                try writer.write(to: url)
                report.wroteRuntimeCache = true
                report.cacheFile = url
            } catch {
                RuntimeCache.warn("runtime cache not written (\(error)); continuing without it")
            }
        }
        return report
    }
}

// MARK: - File header

/// The fixed 64-byte header.
struct Header {
    var version: UInt32
    var keyLength: Int
    var entryCount: Int
    var tableLength: Int
    var dataOffset: Int
    var fileLength: Int
    var tableChecksum: UInt64

    func encoded() -> [UInt8] {
        var bytes = RuntimeCache.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        put(version); put(RuntimeCache.byteOrderMark); put(UInt32(keyLength)); put(UInt32(entryCount))
        put(UInt64(tableLength)); put(UInt64(dataOffset)); put(UInt64(fileLength)); put(tableChecksum)
        let sum = bytes.withUnsafeBytes { RuntimeCache.checksum($0) }
        put(sum)
        precondition(bytes.count == RuntimeCache.headerSize)
        return bytes
    }

    static func decode(_ base: UnsafeRawPointer, size: Int) throws -> Header {
        guard size >= RuntimeCache.headerSize else { throw CacheError("file of \(size) bytes is shorter than the header") }
        guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == RuntimeCache.magic else { throw CacheError("bad magic") }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        guard u32(8) == RuntimeCache.formatVersion else { throw CacheError("format version \(u32(8)), expected \(RuntimeCache.formatVersion)") }
        guard u32(12) == RuntimeCache.byteOrderMark else { throw CacheError("written on a machine of the other byte order") }
        guard RuntimeCache.checksum(UnsafeRawBufferPointer(start: base, count: 56)) == u64(56) else { throw CacheError("header checksum mismatch") }
        let limit = UInt64(Int.max / 4)
        guard u64(16) < limit, u64(24) < limit, u64(32) < limit, u64(40) < limit else { throw CacheError("header fields out of range") }
        return Header(version: u32(8), keyLength: Int(u32(16)), entryCount: Int(u32(20)), tableLength: Int(u64(24)),
                      dataOffset: Int(u64(32)), fileLength: Int(u64(40)), tableChecksum: u64(48))
    }
}

/// One table entry: a name, its kind and shape, and its byte segments (Q8/Q4: quants, scales; F32: data).
struct CacheEntry {
    var name: String
    var kind: RuntimeCache.Kind
    var shape: [Int]
    var segments: [(offset: Int, length: Int)]
    var sample: UInt64

    /// Byte lengths a kind and shape imply (what `Q8Matrix`/`Q4Matrix`/`Tensor` hold in memory).
    static func lengths(_ kind: RuntimeCache.Kind, _ shape: [Int]) -> [Int]? {
        switch kind {
        case .f32:
            return [shape.reduce(1, *) * 4]
        case .q8, .q4:
            guard shape.count == 2 else { return nil }
            let rows = shape[0], blocks = (shape[1] + quantBlock - 1) / quantBlock
            let quants = kind == .q8 ? rows * blocks * quantBlock : rows * blocks * quantBlock / 2
            return [quants, rows * blocks * 4]
        }
    }

    func encode(into bytes: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        let utf8 = Array(name.utf8)
        put(UInt16(utf8.count)); bytes.append(contentsOf: utf8)
        put(kind.rawValue); put(UInt8(shape.count))
        for d in shape { put(Int64(d)) }
        put(UInt8(segments.count))
        for s in segments { put(UInt64(s.offset)); put(UInt64(s.length)) }
        put(sample)
    }

    /// Parses the table, checking every field against the table's and the file's bounds.
    static func decodeTable(_ table: UnsafeRawBufferPointer, count: Int, fileSize: Int, dataOffset: Int) throws -> [String: CacheEntry] {
        var cursor = 0
        func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let n = MemoryLayout<T>.size
            guard cursor + n <= table.count else { throw CacheError("table truncated") }
            defer { cursor += n }
            return T(littleEndian: table.baseAddress!.loadUnaligned(fromByteOffset: cursor, as: T.self))
        }
        var entries: [String: CacheEntry] = [:]
        for _ in 0..<count {
            let nameLength = Int(try take(UInt16.self))
            guard cursor + nameLength <= table.count else { throw CacheError("table truncated") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: table[cursor..<(cursor + nameLength)]), as: UTF8.self)
            cursor += nameLength
            guard let kind = RuntimeCache.Kind(rawValue: try take(UInt8.self)) else { throw CacheError("unknown entry kind for '\(name)'") }
            let rank = Int(try take(UInt8.self))
            var shape: [Int] = []
            for _ in 0..<rank {
                let d = try take(Int64.self)
                guard d >= 0, d < 1 << 32 else { throw CacheError("bad dimension for '\(name)'") }
                shape.append(Int(d))
            }
            let segmentCount = Int(try take(UInt8.self))
            var segments: [(Int, Int)] = []
            for _ in 0..<segmentCount {
                let offset = try take(UInt64.self), length = try take(UInt64.self)
                guard offset >= UInt64(dataOffset), length <= UInt64(fileSize), offset <= UInt64(fileSize) - length else {
                    throw CacheError("entry '\(name)' lies outside the file")
                }
                segments.append((Int(offset), Int(length)))
            }
            let sample = try take(UInt64.self)
            guard let expected = lengths(kind, shape), expected == segments.map(\.1) else {
                throw CacheError("entry '\(name)' has segment lengths that do not match its shape \(shape)")
            }
            entries[name] = CacheEntry(name: name, kind: kind, shape: shape, segments: segments, sample: sample)
        }
        guard cursor == table.count else { throw CacheError("trailing bytes in the table") }
        return entries
    }
}

// MARK: - Reader

/// A validated, memory-mapped cache file. Weights are copied out of the mapping (the mapped pages are
/// released after each copy, so the resident set holds one copy).
final class RuntimeCacheReader: @unchecked Sendable {
    let file: MappedFile
    let entries: [String: CacheEntry]
    /// The layout of the file's Q8 matrices (from its key).
    let q8Layout: Q8Layout

    init(url: URL, key: String, q8Layout: Q8Layout) throws {
        self.q8Layout = q8Layout
        file = try MappedFile(url: url)
        guard let base = file.base else { throw CacheError("empty file") }
        let header = try Header.decode(base, size: file.size)
        guard header.fileLength == file.size else {
            throw CacheError("file is \(file.size) bytes, header says \(header.fileLength) (truncated?)")
        }
        let keyStart = RuntimeCache.headerSize, tableStart = keyStart + header.keyLength
        guard tableStart + header.tableLength <= header.dataOffset, header.dataOffset <= file.size else {
            throw CacheError("header offsets outside the file")
        }
        let keyBytes = UnsafeRawBufferPointer(start: base + keyStart, count: header.keyLength)
        guard keyBytes.elementsEqual(key.utf8) else { throw CacheError("key mismatch") }
        let table = UnsafeRawBufferPointer(start: base + tableStart, count: header.tableLength)
        let covered = UnsafeRawBufferPointer(start: base + keyStart, count: header.keyLength + header.tableLength)
        guard RuntimeCache.checksum(covered) == header.tableChecksum else { throw CacheError("table checksum mismatch") }
        entries = try CacheEntry.decodeTable(table, count: header.entryCount, fileSize: file.size, dataOffset: header.dataOffset)
        for entry in entries.values {
            guard RuntimeCache.sampleChecksum(entry.segments.map { UnsafeRawBufferPointer(start: base + $0.offset, count: $0.length) }) == entry.sample else {
                throw CacheError("checksum mismatch in '\(entry.name)'")
            }
        }
    }

    private func pointer(_ segment: (offset: Int, length: Int)) -> UnsafeRawPointer { file.base! + segment.offset }

    /// Drops the mapped pages of an entry from this process (the page cache keeps them).
    private func release(_ entry: CacheEntry) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        for s in entry.segments {
            let start = Int(bitPattern: pointer(s)), end = start + s.length
            let first = (start + page - 1) / page * page, last = end / page * page
            if last > first { madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, MADV_DONTNEED) }
        }
    }

    func tensor(_ name: String, shape: [Int]) -> Tensor? {
        guard let e = entries[name], e.kind == .f32, e.shape == shape else { return nil }
        let t = Tensor(shape: shape)
        UnsafeMutableRawPointer(t.data).copyMemory(from: pointer(e.segments[0]), byteCount: e.segments[0].length)
        release(e)
        return t
    }

    func linear(_ name: String, format: WeightFormat, rows: Int, columns: Int, bias: Tensor?) -> LinearWeight? {
        guard let e = entries[name], e.shape == [rows, columns] else { return nil }
        defer { release(e) }
        switch (format, e.kind) {
        case (.q8, .q8):
            return LinearWeight(q8: Q8Matrix(rows: rows, columns: columns, layout: q8Layout, quantsBytes: pointer(e.segments[0]),
                                             scalesBytes: pointer(e.segments[1])), bias: bias)
        case (.q4, .q4):
            return LinearWeight(q4: Q4Matrix(rows: rows, columns: columns, quantsBytes: pointer(e.segments[0]),
                                             scalesBytes: pointer(e.segments[1])), bias: bias)
        default:
            return nil
        }
    }
}

// MARK: - Writer

/// Records converted weights during a cold load and writes them as one cache file at the end:
/// temp file in the same folder, fsync, atomic rename (a reader never sees a partial file).
final class RuntimeCacheWriter: @unchecked Sendable {
    private struct Pending {
        var name: String
        var kind: RuntimeCache.Kind
        var shape: [Int]
        var segments: [UnsafeRawBufferPointer]
        var owner: AnyObject
    }

    let key: String
    private var pending: [Pending] = []
    private var names: Set<String> = []

    init(key: String) {
        self.key = key
    }

    func add(_ tensor: Tensor, name: String) {
        guard names.insert(name).inserted else { return }
        pending.append(Pending(name: name, kind: .f32, shape: tensor.shape,
                               segments: [UnsafeRawBufferPointer(start: tensor.data, count: tensor.count * 4)], owner: tensor))
    }

    func add(_ weight: LinearWeight, name: String) {
        guard names.insert(name).inserted else { return }
        switch weight.storage {
        case .f32: return
        case .q8(let m):
            pending.append(Pending(name: name, kind: .q8, shape: [m.rows, m.columns],
                                   segments: [UnsafeRawBufferPointer(start: m.quants, count: m.quantsByteCount),
                                              UnsafeRawBufferPointer(start: m.scales, count: m.scalesByteCount)], owner: m))
        case .q4(let m):
            pending.append(Pending(name: name, kind: .q4, shape: [m.rows, m.columns],
                                   segments: [UnsafeRawBufferPointer(start: m.quants, count: m.quantsByteCount),
                                              UnsafeRawBufferPointer(start: m.scales, count: m.scalesByteCount)], owner: m))
        }
    }

    func write(to url: URL) throws {
        func aligned(_ n: Int) -> Int { (n + RuntimeCache.alignment - 1) / RuntimeCache.alignment * RuntimeCache.alignment }
        // Table (its size does not depend on the offsets' values: fixed-width fields).
        func table(_ offsets: [[Int]]) -> [UInt8] {
            var bytes: [UInt8] = []
            for (p, o) in zip(pending, offsets) {
                CacheEntry(name: p.name, kind: p.kind, shape: p.shape,
                           segments: zip(o, p.segments).map { ($0, $1.count) },
                           sample: RuntimeCache.sampleChecksum(p.segments)).encode(into: &bytes)
            }
            return bytes
        }
        let keyBytes = Array(key.utf8)
        let tableLength = table(pending.map { $0.segments.map { _ in 0 } }).count
        let dataOffset = aligned(RuntimeCache.headerSize + keyBytes.count + tableLength)
        var cursor = dataOffset
        var offsets: [[Int]] = []
        for p in pending {
            offsets.append(p.segments.map { s in defer { cursor = aligned(cursor + s.count) }; return cursor })
        }
        let fileLength = cursor
        let tableBytes = table(offsets)
        let tableChecksum = (keyBytes + tableBytes).withUnsafeBytes { RuntimeCache.checksum($0) }
        let header = Header(version: RuntimeCache.formatVersion, keyLength: keyBytes.count, entryCount: pending.count,
                            tableLength: tableBytes.count, dataOffset: dataOffset, fileLength: fileLength,
                            tableChecksum: tableChecksum).encoded()

        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { ($0 as? NSError)?.localizedDescription ?? "\($0)" }
            throw CacheError("cannot create \(folder.path)\(reason.map { ": \($0)" } ?? "")")
        }
        var fs = statvfs()
        if statvfs(folder.path, &fs) == 0 {
            let free = Int(fs.f_bavail) * Int(fs.f_frsize)
            guard free > fileLength + (64 << 20) else {
                throw CacheError("\(fileLength >> 20) MiB needed, \(free >> 20) MiB free in \(folder.path)")
            }
        }
        let temp = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = open(temp.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CacheError("cannot create \(temp.path): \(String(cString: strerror(errno)))") }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temp.path)  // no-op after the rename
        }
        func put(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30), off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw CacheError("write to \(temp.path) failed: \(String(cString: strerror(errno)))") }
                done += n
            }
        }
        try (keyBytes + tableBytes).withUnsafeBytes { try put($0, at: RuntimeCache.headerSize) }
        for (p, o) in zip(pending, offsets) {
            for (segment, offset) in zip(p.segments, o) where segment.count > 0 { try put(segment, at: offset) }
        }
        guard ftruncate(fd, off_t(fileLength)) == 0 else { throw CacheError("cannot size \(temp.path)") }
        // The header last: a file is only valid once everything before it is on disk.
        try header.withUnsafeBytes { try put($0, at: 0) }
        guard fsync(fd) == 0 else { throw CacheError("fsync of \(temp.path) failed: \(String(cString: strerror(errno)))") }
        close(fd)
        closed = true
        guard rename(temp.path, url.path) == 0 else { throw CacheError("cannot rename to \(url.path): \(String(cString: strerror(errno)))") }
        let dir = open(folder.path, O_RDONLY | O_DIRECTORY)
        if dir >= 0 { fsync(dir); close(dir) }
        withExtendedLifetime(pending) {}
    }
}

// MARK: - SHA-256 for cache keys and file names

/// Streaming SHA-256 over swift-crypto (the same library the hub client and the engine's caches use).
struct SHA256Digest {
    private var hasher = Crypto.SHA256()

    mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    mutating func finalize() -> [UInt8] { Array(hasher.finalize()) }

    static func hexString(_ digest: [UInt8]) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    static func hex(of data: Data) -> String {
        var h = SHA256Digest()
        data.withUnsafeBytes { h.update($0) }
        return hexString(h.finalize())
    }
}
