import Testing
@testable import Tensors

@Test func tensorIsZeroFilledAndAligned() {
    let t = Tensor(shape: [3, 5])
    #expect(t.count == 15)
    #expect(t.array.allSatisfy { $0 == 0 })
    #expect(Int(bitPattern: t.data) % 64 == 0)
    t[7] = 2
    #expect(t.row(1)[2] == 2)
    t.reshape([5, 3])
    #expect(t.row(2)[1] == 2)
}

@Test func f16ConversionMatchesFloat16() {
    for bits: UInt16 in [0, 0x3C00, 0xBC00, 0x7BFF, 0x0001, 0x03FF, 0x8400, 0x7C00] {
        #expect(f16ToFloat(bits) == Float(Float16(bitPattern: bits)))
    }
}

#if os(Linux)
import Foundation

/// The `VmFlags` of the mapping that holds `address`, from /proc/self/smaps.
private func mappingFlags(containing address: UnsafeRawPointer) throws -> [String] {
    // Read to the end: procfs reports size 0, and reading by the reported size stops after one page.
    guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps") else { return [] }
    let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
    let target = UInt(bitPattern: address)
    var inside = false
    for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if let range = fields.first, range.contains("-"), !line.hasPrefix("VmFlags"), fields.count >= 5 {
            let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
            inside = bounds.count == 2 && bounds[0] <= target && target < bounds[1]
        } else if inside, line.hasPrefix("VmFlags:") {
            return fields.dropFirst().map(String.init)
        }
    }
    return []
}

/// Large buffers (weights, activations, KV caches) are marked for transparent huge pages: `hg` in the mapping's
/// flags (the kernel's record of `MADV_HUGEPAGE`), whatever huge pages the host can give at the moment; small
/// ones are not. A Tensor of 20 MB is such a buffer, and its values are zero and writable.
@Test(.enabled(if: LargeAllocation.hugePagesEnabled
                 && FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled"),
               "needs a kernel built with transparent huge pages"))
func largeBuffersAreMarkedForHugePages() throws {
    let big = Tensor(shape: [5 << 20])
    #expect(Int(bitPattern: big.data) % (2 << 20) == 0)
    #expect(big[0] == 0 && big[(5 << 20) - 1] == 0)
    big[(5 << 20) - 1] = 3
    #expect(big[(5 << 20) - 1] == 3)
    #expect(try mappingFlags(containing: big.data).contains("hg"))
    let small = Tensor(shape: [1 << 16])
    #expect(try !mappingFlags(containing: small.data).contains("hg"))
}
#endif
