#if canImport(Glibc)
import Glibc
#endif

/// Buffers for weights, activations and caches, 64-byte aligned; buffers of 8 MiB and more are placed on 2 MiB
/// boundaries and marked for transparent huge pages (`madvise(MADV_HUGEPAGE)`; Debian's default THP mode is
/// `madvise`, so without the mark they are 4 KiB pages).
///
/// Why: the Q8 weights of the 2B are 2.4 GB, and every decode step streams all of them: 600,000 4 KiB pages
/// per token, far past any TLB, against 1,200 2 MiB pages that the second-level TLB holds. Faulting fresh
/// activation buffers and KV caches 4 KiB at a time also showed up as 3–4% of vision and prefill in `perf`
/// (`clear_page_erms`, `exc_page_fault`). `POSTLENS_HUGE_PAGES=0` turns the mark off (to compare, or on a host
/// where huge pages are scarce). Memory from here is released with `deallocate()` as usual.
public enum LargeAllocation {
    /// Buffers from this size up get huge pages.
    public static let threshold = 8 << 20
    private static let hugePage = 2 << 20
    /// Read once: whether large buffers are marked for huge pages.
    public static let hugePagesEnabled: Bool = {
        #if os(Linux)
        if let value = getenv("POSTLENS_HUGE_PAGES").map({ String(cString: $0) }) { return value != "0" }
        return true
        #else
        return false
        #endif
    }()

    /// Uninitialized memory for `byteCount` bytes (at least 1), 64-byte aligned.
    public static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let bytes = max(1, byteCount)
        guard hugePagesEnabled, bytes >= threshold else {
            return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        }
        // From a 2 MiB boundary; the whole huge pages inside are marked before the first touch, so their faults
        // take huge pages. The tail (< 2 MiB) keeps 4 KiB pages: rounding it up would add up to 2 MiB of
        // resident memory per buffer.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: hugePage)
        #if os(Linux)
        _ = madvise(raw, bytes / hugePage * hugePage, MADV_HUGEPAGE)
        #endif
        return raw
    }
}
