import Foundation
import KernelsSIMD
import Tensors

/// Runtime storage format of the linear layers (and of the embedding table, which the tied output
/// matrix shares). Norms, biases and the vision position table always stay F32.
public enum WeightFormat: String, Sendable, CaseIterable, Codable {
    /// Reference: BF16 checkpoint values converted exactly to F32 (4 bytes/weight).
    case f32
    /// Blocks of 32 signed 8-bit values with one F32 scale (1.125 bytes/weight). See `Q8Matrix`.
    case q8
    /// Blocks of 32 signed 4-bit values with one F32 scale (0.625 bytes/weight). See `Q4Matrix`.
    case q4
}

/// The block size of both quantized formats: 32 consecutive input features share one scale. Small
/// enough that one outlier only coarsens 31 neighbours, large enough that the scale costs 1 bit/weight
/// (Q8) and that one block is exactly one 256-bit register of int8 values.
public let quantBlock = 32

/// Allocates `count` zeroed elements, 64-byte aligned (one cache line, and a multiple of 32 for
/// aligned AVX loads of a block).
@usableFromInline
func alignedZeroed<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    let bytes = max(1, count) * MemoryLayout<T>.stride
    let raw = LargeAllocation.allocate(byteCount: bytes)
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    return raw.bindMemory(to: T.self, capacity: max(1, count))
}

/// Copies `count` elements' bytes from `source` (any alignment) into a new 64-byte-aligned buffer:
/// the runtime weight cache fills matrices this way without zeroing them first.
@usableFromInline
func alignedCopy<T>(_ type: T.Type, count: Int, from source: UnsafeRawPointer) -> UnsafeMutablePointer<T> {
    let bytes = max(1, count) * MemoryLayout<T>.stride
    let raw = LargeAllocation.allocate(byteCount: bytes)
    let used = count * MemoryLayout<T>.stride
    // Large tensors: copy in parallel chunks (fresh pages fault in on both cores).
    let chunk = 1 << 22
    if used >= 2 * chunk {
        let pieces = (used + chunk - 1) / chunk
        Parallel.forRanges(pieces) { range in
            for piece in range {
                let start = piece * chunk
                (raw + start).copyMemory(from: source + start, byteCount: min(chunk, used - start))
            }
        }
    } else if used > 0 {
        raw.copyMemory(from: source, byteCount: used)
    }
    if bytes > used { (raw + used).initializeMemory(as: UInt8.self, repeating: 0, count: bytes - used) }
    return raw.bindMemory(to: T.self, capacity: max(1, count))
}

// MARK: - Q8 rows (the matrix layout is in Q8Matrix.swift)

/// Quantizes `count` floats into `ceil(count/32)` Q8 blocks (the last zero-padded): `scale = max|x| / 127`,
/// `q = round-to-nearest-even(x / scale)` (`quantizeBlock32` for full blocks, the same values).
public func quantizeRowQ8(_ x: UnsafePointer<Float>, count: Int,
                          _ q: UnsafeMutablePointer<Int8>, _ scales: UnsafeMutablePointer<Float>) {
    let blocks = (count + quantBlock - 1) / quantBlock
    for b in 0..<blocks {
        let start = b * quantBlock, n = min(quantBlock, count - start)
        if n == quantBlock {
            scales[b] = quantizeBlock32(x + start, q + start)
            continue
        }
        var amax: Float = 0
        for j in 0..<n { amax = max(amax, abs(x[start + j])) }
        let scale = amax / 127
        let inverse: Float = scale > 0 ? 1 / scale : 0
        scales[b] = scale
        // Round-to-nearest-even (`vroundps`, vectorizes; away-from-zero calls `roundf` per value).
        // |x·inverse| ≤ 127 up to one ulp, so the clamp never changes a value; it keeps −128 out.
        for j in 0..<n {
            let v = (x[start + j] * inverse).rounded(.toNearestOrEven)
            q[start + j] = Int8(truncatingIfNeeded: Int32(max(-127, min(127, v))))
        }
        for j in n..<quantBlock { q[start + j] = 0 }
    }
}

/// Quantizes rows `0..<rows` of `x` (row stride `ld`) to Q8 blocks, in parallel, and hands each row's
/// blocks (`32·blocks` int8, zero-padded, and `blocks` scales) to `store(row, quants, scales)`, which lays them
/// out for its kernels. The scratch row is per thread.
func quantizeRowsQ8(_ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int, minimumPerThread: Int = 16,
                    _ store: (Int, UnsafePointer<Int8>, UnsafePointer<Float>) -> Void) {
    let blocks = (columns + quantBlock - 1) / quantBlock
    Parallel.forRanges(rows, minimumPerThread: minimumPerThread) { range in
        let q = alignedZeroed(Int8.self, count: blocks * quantBlock)
        let rowScales = alignedZeroed(Float.self, count: blocks)
        defer {
            UnsafeMutableRawPointer(q).deallocate()
            UnsafeMutableRawPointer(rowScales).deallocate()
        }
        for r in range {
            quantizeRowQ8(x + r * ld, count: columns, q, rowScales)
            store(r, q, rowScales)
        }
    }
}

/// Σ of one block's 32 int8 values (vectorized by the compiler).
@inline(__always)
func blockSum(_ q: UnsafePointer<Int8>) -> Int32 {
    var sum: Int32 = 0
    for j in 0..<quantBlock { sum &+= Int32(q[j]) }
    return sum
}

// MARK: - Q4

/// A `[rows, columns]` matrix quantized to 4 bits in blocks of 32 along each row (symmetric, no min).
///
/// Byte layout:
/// - `quants`: `rows × paddedColumns/2` `UInt8`; row `r`, block `b` is 16 bytes at
///   `r·paddedColumns/2 + 16·b`. Byte `j` (0…15) of a block holds element `j` in its low nibble and
///   element `j + 16` in its high nibble — so one 128-bit load, a shift and a mask give the 32
///   values in order. Nibbles store `q + 8` (0…15). Padding as in Q8 (zero weights, stored as 8).
/// - `scales`: `rows × blocks` `Float`.
///
/// Value: `w ≈ (Float(nibble) − 8) · scale`. The scale is `m / −8` where `m` is the block's value of
/// largest magnitude (sign kept), so that value maps exactly to −8 and all 16 levels are used; the
/// price is that values of the opposite sign near the extreme's magnitude clamp at +7 (error up to one
/// step instead of half), which is rarer and cheaper than losing a level for every block.
public final class Q4Matrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let blocks: Int
    public let paddedColumns: Int
    public let quants: UnsafeMutablePointer<UInt8>
    public let scales: UnsafeMutablePointer<Float>

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        blocks = (columns + quantBlock - 1) / quantBlock
        paddedColumns = blocks * quantBlock
        quants = alignedZeroed(UInt8.self, count: rows * paddedColumns / 2)
        scales = alignedZeroed(Float.self, count: rows * blocks)
    }

    /// A matrix whose bytes are copied from an earlier `quants` / `scales` pair of the same
    /// dimensions (`quantsByteCount` and `scalesByteCount` bytes; the runtime weight cache).
    public init(rows: Int, columns: Int, quantsBytes: UnsafeRawPointer, scalesBytes: UnsafeRawPointer) {
        self.rows = rows
        self.columns = columns
        blocks = (columns + quantBlock - 1) / quantBlock
        paddedColumns = blocks * quantBlock
        quants = alignedCopy(UInt8.self, count: rows * paddedColumns / 2, from: quantsBytes)
        scales = alignedCopy(Float.self, count: rows * blocks, from: scalesBytes)
    }

    public var quantsByteCount: Int { rows * paddedColumns / 2 }
    public var scalesByteCount: Int { rows * blocks * 4 }

    public convenience init(quantizing w: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int? = nil) {
        self.init(rows: rows, columns: columns)
        quantizeRows(from: w, ld: ld ?? columns, rows: 0..<rows)
    }

    /// Quantizes rows `range` from `source` (`range.count` rows, row stride `ld`, default `columns`).
    public func quantizeRows(from source: UnsafePointer<Float>, ld: Int? = nil, rows range: Range<Int>) {
        let ld = ld ?? columns, start = range.lowerBound
        Parallel.forRanges(range.count, minimumPerThread: 64) { part in
            for i in part {
                let r = start + i
                quantizeRowQ4(source + i * ld, count: columns, quants + r * paddedColumns / 2, scales + r * blocks)
            }
        }
    }

    public convenience init(quantizing t: Tensor) {
        precondition(t.shape.count == 2, "Q4Matrix needs a 2-D tensor, got \(t.shape)")
        self.init(quantizing: t.data, rows: t.shape[0], columns: t.shape[1])
    }

    deinit {
        UnsafeMutableRawPointer(quants).deallocate()
        UnsafeMutableRawPointer(scales).deallocate()
    }

    public var byteCount: Int { rows * paddedColumns / 2 + rows * blocks * 4 }

    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows, "row \(r) outside 0..<\(rows)")
        dequantizeRowsQ4(self, r..<(r + 1), into: out, ld: columns)
    }
}

@inlinable
public func quantizeRowQ4(_ x: UnsafePointer<Float>, count: Int,
                          _ q: UnsafeMutablePointer<UInt8>, _ scales: UnsafeMutablePointer<Float>) {
    let blocks = (count + quantBlock - 1) / quantBlock
    for b in 0..<blocks {
        let start = b * quantBlock, n = min(quantBlock, count - start)
        var extreme: Float = 0
        for j in 0..<n where abs(x[start + j]) > abs(extreme) { extreme = x[start + j] }
        let scale = extreme / -8
        let inverse: Float = scale != 0 ? 1 / scale : 0
        scales[b] = scale
        @inline(__always) func nibble(_ j: Int) -> UInt8 {
            guard j < n else { return 8 }
            let v = (x[start + j] * inverse).rounded(.toNearestOrEven)
            return UInt8(Int(max(-8, min(7, v))) + 8)
        }
        let out = q + b * (quantBlock / 2)
        for j in 0..<(quantBlock / 2) { out[j] = nibble(j) | (nibble(j + 16) << 4) }
    }
}

public func dequantizeRowsQ4(_ m: Q4Matrix, _ range: Range<Int>, into out: UnsafeMutablePointer<Float>, ld: Int) {
    let k = m.columns, blocks = m.blocks
    for (i, r) in range.enumerated() {
        let q = m.quants + r * m.paddedColumns / 2, s = m.scales + r * blocks, o = out + i * ld
        for b in 0..<blocks {
            let scale = s[b], start = b * quantBlock, bytes = q + b * 16
            if start + quantBlock <= k {
                for j in 0..<16 {
                    o[start + j] = Float(Int32(bytes[j] & 0x0F) - 8) * scale
                    o[start + j + 16] = Float(Int32(bytes[j] >> 4) - 8) * scale
                }
            } else {
                for j in 0..<(k - start) {
                    let nibble = j < 16 ? bytes[j] & 0x0F : bytes[j - 16] >> 4
                    o[start + j] = Float(Int32(nibble) - 8) * scale
                }
            }
        }
    }
}

// MARK: - Quantized activations

/// Rows of activations quantized to Q8 for the integer dot products of decode: same block layout
/// as `Q8Matrix` (zero-padded to `paddedColumns`), plus each block's sum of quants (`sums`), which
/// the Q4 kernel needs to remove the +8 offset of its nibbles without unpacking them to signed.
public final class Q8Activations {
    public let rows: Int
    public let columns: Int
    public let blocks: Int
    public let paddedColumns: Int
    public let quants: UnsafeMutablePointer<Int8>
    public let scales: UnsafeMutablePointer<Float>
    public let sums: UnsafeMutablePointer<Int32>

    public init(_ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int? = nil) {
        self.rows = rows
        self.columns = columns
        blocks = (columns + quantBlock - 1) / quantBlock
        paddedColumns = blocks * quantBlock
        quants = alignedZeroed(Int8.self, count: rows * paddedColumns)
        scales = alignedZeroed(Float.self, count: rows * blocks)
        sums = alignedZeroed(Int32.self, count: rows * blocks)
        let (quants, scales, sums, blocks, paddedColumns) = (self.quants, self.scales, self.sums, self.blocks, self.paddedColumns)
        quantizeRowsQ8(x, rows: rows, columns: columns, ld: ld ?? columns) { r, q, rowScales in
            (quants + r * paddedColumns).update(from: q, count: paddedColumns)
            (scales + r * blocks).update(from: rowScales, count: blocks)
            for b in 0..<blocks { sums[r * blocks + b] = blockSum(q + b * quantBlock) }
        }
    }

    deinit {
        UnsafeMutableRawPointer(quants).deallocate()
        UnsafeMutableRawPointer(scales).deallocate()
        UnsafeMutableRawPointer(sums).deallocate()
    }
}
