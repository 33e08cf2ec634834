import Foundation

/// Activation rows quantized to Q8 blocks for the VNNI and AMX products (`Q8Layout.quads` weights).
///
/// Layout: tiles of 16 rows, and within a tile block-major, so that one tile's operands are one
/// contiguous stream and an AMX A tile (16 rows × one block) is one 512-byte load with stride 32:
/// - `quants[((t·blocks + b)·16 + i)·32 + j]`: row `16t + i`'s 32 signed int8 values of block `b`
///   (rows past `rows` are zeros). AVX-512 broadcasts a row's quad (4 bytes) from here.
/// - `scales[(t·blocks + b)·16 + i]`: the block's F32 scale.
/// - `compensation[(t·blocks + b)·16 + i]`: `−128 · Σ_j q[j]`, the start value of the block's int32
///   accumulator, which removes the +128 bias of the stored weights (`Q8Layout.quads`).
/// Kernels address row `i` of a tile, block `b` as `base + (b·16 + i)` (`rowsPerBlock` = 16).
final class QuadActivations {
    let rows: Int
    /// Rows rounded up to 16 (an AMX tile, and a whole number of every microkernel's row tile).
    let paddedRows: Int
    let blocks: Int
    let quants: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
    let compensation: UnsafeMutablePointer<Int32>
    private let quantStorage: TileBuffer, scaleStorage: TileBuffer, compensationStorage: TileBuffer

    init(_ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int) {
        self.rows = rows
        paddedRows = (rows + 15) / 16 * 16
        blocks = (columns + quantBlock - 1) / quantBlock
        let (paddedRows, blocks) = (self.paddedRows, self.blocks)
        // Float-sized scratch buffers reused across products (see `TileBuffers`).
        quantStorage = TileBuffers.take((blocks * paddedRows * quantBlock + 3) / 4)
        scaleStorage = TileBuffers.take(blocks * paddedRows)
        compensationStorage = TileBuffers.take(blocks * paddedRows)
        quants = UnsafeMutableRawPointer(quantStorage.pointer).bindMemory(to: Int8.self, capacity: blocks * paddedRows * quantBlock)
        scales = scaleStorage.pointer
        compensation = UnsafeMutableRawPointer(compensationStorage.pointer).bindMemory(to: Int32.self, capacity: blocks * paddedRows)
        let (quants, scales, compensation) = (self.quants, self.scales, self.compensation)
        for r in rows..<paddedRows {
            for b in 0..<blocks {
                let i = QuadActivations.index(row: r, block: b, blocks: blocks)
                (quants + i * quantBlock).update(repeating: 0, count: quantBlock)
                scales[i] = 0
                compensation[i] = 0
            }
        }
        quantizeRowsQ8(x, rows: rows, columns: columns, ld: ld) { r, q, rowScales in
            for b in 0..<blocks {
                let i = QuadActivations.index(row: r, block: b, blocks: blocks), src = q + b * quantBlock
                (quants + i * quantBlock).update(from: src, count: quantBlock)
                scales[i] = rowScales[b]
                compensation[i] = -128 &* blockSum(src)
            }
        }
    }

    /// Rows of one block within a tile: the stride, in rows, between blocks as the kernels see it.
    static let rowsPerBlock = 16

    /// Index of row `r`, block `b` in `scales` / `compensation` (×32 for `quants`).
    @inline(__always)
    static func index(row r: Int, block b: Int, blocks: Int) -> Int { ((r >> 4) * blocks + b) * 16 + (r & 15) }

    /// Offset of row `r`'s operands (block 0) in `scales` / `compensation` (×32 for `quants`).
    @inline(__always)
    func rowOffset(_ r: Int) -> Int { QuadActivations.index(row: r, block: 0, blocks: blocks) }

    deinit {
        TileBuffers.give(quantStorage)
        TileBuffers.give(scaleStorage)
        TileBuffers.give(compensationStorage)
    }
}
