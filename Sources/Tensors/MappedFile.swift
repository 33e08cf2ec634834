import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file. Weights stay in the page cache and are shared between
/// processes; nothing is copied until a tensor is converted.
public final class MappedFile: @unchecked Sendable {
    public let url: URL
    public let size: Int
    /// Start of the mapping (nil for an empty file).
    public let base: UnsafeRawPointer?

    public enum Error: Swift.Error, CustomStringConvertible {
        case cannotOpen(String, String)
        case cannotMap(String, String)
        public var description: String {
            switch self {
            case .cannotOpen(let path, let why): return "cannot open \(path): \(why)"
            case .cannotMap(let path, let why): return "cannot memory-map \(path): \(why)"
            }
        }
    }

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw Error.cannotOpen(url.path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Error.cannotOpen(url.path, String(cString: strerror(errno))) }
        size = Int(info.st_size)
        if size == 0 {
            base = nil
            return
        }
        let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw Error.cannotMap(url.path, String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(pointer)
    }

    /// Hints the kernel that the whole file will be read soon (used before converting all weights).
    public func adviseWillNeed() {
        guard let base else { return }
        madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_WILLNEED)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }
}
