import Foundation

/// Activation rows quantized to Q8 blocks for the VNNI and AMX products (`Q8Layout.quads` weights).
///
/// Layout, block-major so that any tile height can address it and an AMX A tile is one strided load:
/// - `quants[(b·paddedRows + r)·32 + j]`: row `r`'s 32 signed int8 values of block `b` (rows past `rows`
///   are zeros). AVX-512 broadcasts a row's quad (4 bytes) from here; AMX loads 16 rows with stride 32.
/// - `scales[b·paddedRows + r]`: the block's F32 scale.
/// - `compensation[b·paddedRows + r]`: `−128 · Σ_j q[j]`, the start value of the block's int32
///   accumulator, which removes the +128 bias of the stored weights (`Q8Layout.quads`).
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
        for b in 0..<blocks {
            for r in rows..<paddedRows {
                (quants + (b * paddedRows + r) * quantBlock).update(repeating: 0, count: quantBlock)
                scales[b * paddedRows + r] = 0
                compensation[b * paddedRows + r] = 0
            }
        }
        Parallel.forRanges(rows, minimumPerThread: 16) { range in
            let q = alignedZeroed(Int8.self, count: blocks * quantBlock)
            let rowScales = alignedZeroed(Float.self, count: blocks)
            defer {
                UnsafeMutableRawPointer(q).deallocate()
                UnsafeMutableRawPointer(rowScales).deallocate()
            }
            for r in range {
                quantizeRowQ8(x + r * ld, count: columns, q, rowScales)
                for b in 0..<blocks {
                    let i = b * paddedRows + r, src = q + b * quantBlock
                    (quants + i * quantBlock).update(from: src, count: quantBlock)
                    scales[i] = rowScales[b]
                    var sum: Int32 = 0
                    for j in 0..<quantBlock { sum &+= Int32(src[j]) }
                    compensation[i] = -128 &* sum
                }
            }
        }
    }

    deinit {
        TileBuffers.give(quantStorage)
        TileBuffers.give(scaleStorage)
        TileBuffers.give(compensationStorage)
    }
}
