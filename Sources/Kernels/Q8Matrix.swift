import Foundation
import Tensors

/// A `[rows, columns]` matrix quantized to 8 bits in blocks of 32 along each row, stored in panels
/// of 16 rows laid out for the integer kernels.
///
/// Values: `w[r, 32·b + j] ≈ Float(q) · scale(r, b)` with `scale = max|w| / 127` over the block and
/// `q = round(w / scale)` in −127…127 (−128 is never produced). Columns are zero-padded to a multiple
/// of 32 (`paddedColumns`), rows to a multiple of 16 (`paddedRows`) with zero quants and scales.
///
/// Byte layout — "panel-major", the order in which the kernels consume weights:
/// - `quants`: for panel `P` (rows `16P …< 16P+16`), block `b`, pair `p` (columns `32b+2p`, `+1`) and
///   row `c` in the panel, the two int8 values are at `((P·blocks + b)·16 + p)·32 + 2c` (and `+1`).
///   So each pair of inputs holds 16 rows × 2 values in 32 contiguous bytes: two `vpmovsxbw` give
///   the 16-bit operands of `vpmaddwd` for 8 rows each, with no repacking at run time. One panel
///   block is 512 bytes.
/// - `scales`: row `c` of panel `P`, block `b` at `(P·blocks + b)·16 + c` (16 contiguous floats,
///   one vector load per 8 rows).
///
/// Why not row-major: decode multiplies each weight by 1–16 activation rows; with rows contiguous,
/// every block costs a horizontal reduction and a scale per (weight row, activation row) pair, which
/// made batched decode compute-bound. In panels the output rows are the vector lanes.
///
/// The byte order within a panel block depends on `layout` (see `Q8Layout`): pairs for the AVX2
/// kernels, biased quads for VNNI/AMX. Scales are the same in both.
public final class Q8Matrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let blocks: Int
    public let paddedColumns: Int
    /// Panels of 16 rows.
    public let panels: Int
    public var paddedRows: Int { panels * 16 }
    public let quants: UnsafeMutablePointer<Int8>
    public let scales: UnsafeMutablePointer<Float>
    /// The order of the bytes of each panel block (fixed at creation).
    public let layout: Q8Layout

    /// Bytes of one panel's block of quants.
    public static let panelBlockBytes = 512

    public init(rows: Int, columns: Int, layout: Q8Layout = .preferred) {
        self.rows = rows
        self.layout = layout
        self.columns = columns
        blocks = (columns + quantBlock - 1) / quantBlock
        paddedColumns = blocks * quantBlock
        panels = (rows + 15) / 16
        quants = alignedZeroed(Int8.self, count: panels * 16 * paddedColumns)
        scales = alignedZeroed(Float.self, count: panels * 16 * blocks)
        // Padding holds the value 0, stored biased in `.quads`.
        if layout == .quads { quants.update(repeating: Int8(bitPattern: 0x80), count: panels * 16 * paddedColumns) }
    }

    /// A matrix whose bytes are copied from an earlier `quants` / `scales` pair of the same
    /// dimensions (`quantsByteCount` and `scalesByteCount` bytes; the runtime weight cache).
    public init(rows: Int, columns: Int, layout: Q8Layout, quantsBytes: UnsafeRawPointer, scalesBytes: UnsafeRawPointer) {
        self.rows = rows
        self.layout = layout
        self.columns = columns
        blocks = (columns + quantBlock - 1) / quantBlock
        paddedColumns = blocks * quantBlock
        panels = (rows + 15) / 16
        quants = alignedCopy(Int8.self, count: panels * 16 * paddedColumns, from: quantsBytes)
        scales = alignedCopy(Float.self, count: panels * 16 * blocks, from: scalesBytes)
    }

    /// Bytes of `quants` (padding included) and of `scales`, as laid out in memory.
    public var quantsByteCount: Int { panels * 16 * paddedColumns }
    public var scalesByteCount: Int { panels * 16 * blocks * 4 }

    /// Quantizes a row-major F32 matrix with row stride `ld` (rows in parallel).
    public convenience init(quantizing w: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int? = nil,
                            layout: Q8Layout = .preferred) {
        self.init(rows: rows, columns: columns, layout: layout)
        quantizeRows(from: w, ld: ld ?? columns, rows: 0..<rows)
    }

    public convenience init(quantizing t: Tensor, layout: Q8Layout = .preferred) {
        precondition(t.shape.count == 2, "Q8Matrix needs a 2-D tensor, got \(t.shape)")
        self.init(quantizing: t.data, rows: t.shape[0], columns: t.shape[1], layout: layout)
    }

    deinit {
        UnsafeMutableRawPointer(quants).deallocate()
        UnsafeMutableRawPointer(scales).deallocate()
    }

    /// Bytes held (quants with their padding, and scales).
    public var byteCount: Int { quantsByteCount + scalesByteCount }

    /// Byte offset of row `r`'s pair `p` of block `b` in `quants` (`.pairs` layout).
    @inline(__always)
    func pairOffset(row r: Int, block b: Int, pair p: Int) -> Int {
        (((r >> 4) * blocks + b) * 16 + p) * 32 + (r & 15) * 2
    }

    /// Byte offset of row `r`'s quad `q` (columns `32b + 4q …+ 3`) of block `b` (`.quads` layout).
    @inline(__always)
    func quadOffset(row r: Int, block b: Int, quad q: Int) -> Int {
        (((r >> 4) * blocks + b) * 8 + q) * 64 + (r & 15) * 4
    }

    /// Byte offset of row `r`, column `k` in `quants`, in this matrix's layout.
    @inline(__always)
    func byteOffset(row r: Int, column k: Int) -> Int {
        let b = k / quantBlock, j = k % quantBlock
        switch layout {
        case .pairs: return pairOffset(row: r, block: b, pair: j / 2) + j % 2
        case .quads: return quadOffset(row: r, block: b, quad: j / 4) + j % 4
        }
    }

    /// Index of row `r`'s scale of block `b` in `scales`.
    @inline(__always)
    func scaleIndex(row r: Int, block b: Int) -> Int { ((r >> 4) * blocks + b) * 16 + (r & 15) }

    /// The stored 8-bit value of row `r`, column `k` (tests and naive twins).
    public func quant(_ r: Int, _ k: Int) -> Int8 {
        let stored = quants[byteOffset(row: r, column: k)]
        return layout == .quads ? stored ^ Int8(bitPattern: 0x80) : stored
    }

    /// The scale of row `r`'s block `b`.
    public func scale(_ r: Int, block b: Int) -> Float { scales[scaleIndex(row: r, block: b)] }

    /// Quantizes rows `range` from `source` (`range.count` rows, row stride `ld`, default `columns`).
    public func quantizeRows(from source: UnsafePointer<Float>, ld: Int? = nil, rows range: Range<Int>) {
        let ld = ld ?? columns, start = range.lowerBound
        let (blocks, paddedColumns, columns) = (self.blocks, self.paddedColumns, self.columns)
        Parallel.forRanges(range.count, minimumPerThread: 64) { part in
            let row = alignedZeroed(Int8.self, count: paddedColumns)
            let rowScales = alignedZeroed(Float.self, count: blocks)
            defer {
                UnsafeMutableRawPointer(row).deallocate()
                UnsafeMutableRawPointer(rowScales).deallocate()
            }
            let bytes = UnsafeMutableRawPointer(quants)
            for i in part {
                let r = start + i
                quantizeRowQ8(source + i * ld, count: columns, row, rowScales)
                let values = UnsafeRawPointer(row)
                for b in 0..<blocks {
                    scales[scaleIndex(row: r, block: b)] = rowScales[b]
                    switch layout {
                    case .pairs:
                        let base = pairOffset(row: r, block: b, pair: 0)
                        for p in 0..<16 {
                            let pair = values.loadUnaligned(fromByteOffset: b * quantBlock + 2 * p, as: UInt16.self)
                            bytes.storeBytes(of: pair, toByteOffset: base + p * 32, as: UInt16.self)
                        }
                    case .quads:
                        let base = quadOffset(row: r, block: b, quad: 0)
                        for q in 0..<8 {
                            // +128 on each byte (−127…127 → 1…255): the unsigned operand of vpdpbusd/tdpbsud.
                            let quad = values.loadUnaligned(fromByteOffset: b * quantBlock + 4 * q, as: UInt32.self)
                            bytes.storeBytes(of: quad ^ 0x8080_8080, toByteOffset: base + q * 64, as: UInt32.self)
                        }
                    }
                }
            }
        }
    }

    /// Row `r` as F32 (`columns` values): the embedding lookup.
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows, "row \(r) outside 0..<\(rows)")
        dequantizeRowsQ8(self, r..<(r + 1), into: out, ld: columns)
    }
}

/// Dequantizes rows `range` of `m` into `out` (`range.count` rows of `m.columns` floats, stride `ld`).
public func dequantizeRowsQ8(_ m: Q8Matrix, _ range: Range<Int>, into out: UnsafeMutablePointer<Float>, ld: Int) {
    let k = m.columns
    for (i, r) in range.enumerated() {
        let o = out + i * ld
        for b in 0..<m.blocks {
            let scale = m.scales[m.scaleIndex(row: r, block: b)]
            let start = b * quantBlock, n = min(quantBlock, k - start)
            switch m.layout {
            case .pairs:
                let q = m.quants + m.pairOffset(row: r, block: b, pair: 0)
                for j in 0..<n { o[start + j] = Float(q[(j >> 1) * 32 + (j & 1)]) * scale }
            case .quads:
                let q = UnsafeRawPointer(m.quants + m.quadOffset(row: r, block: b, quad: 0)).assumingMemoryBound(to: UInt8.self)
                for j in 0..<n { o[start + j] = Float(Int(q[(j >> 2) * 64 + (j & 3)]) - 128) * scale }
            }
        }
    }
}

/// The byte order of a `Q8Matrix` panel block (512 bytes: 16 rows × 32 columns), chosen for the kernels
/// of the active CPU level when the matrix is made (and part of the runtime cache's key).
public enum Q8Layout: String, Sendable, CaseIterable {
    /// Signed int8, for each pair `p` of columns the 16 rows' two values: `[p·32 + 2c + j]`. Two
    /// `vpmovsxbw` give `vpmaddwd` operands (AVX2, portable).
    case pairs
    /// For each quad `q` of columns the 16 rows' four values, `[q·64 + 4c + j]`, stored as unsigned
    /// `w + 128`: one 64-byte row is a zmm operand of `vpdpbusd` (u8 × s8, 16 rows as lanes) and a
    /// block (8 such rows) is exactly an AMX B tile for `tdpbsud`. The +128 is removed with the
    /// activations' block sums (`Σ x·(w+128) = Σ x·w + 128·Σ x`).
    case quads

    /// The layout the active level's kernels read.
    public static var preferred: Q8Layout { KernelDispatch.level >= .avx512 ? .quads : .pairs }
}
