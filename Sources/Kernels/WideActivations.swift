import Foundation

/// Q8-quantized activation rows widened to int16 and interleaved in tiles of `tileRows` rows, the
/// order in which the integer microkernels broadcast them: for tile `t`, block `b`, pair `p` (0…15)
/// the tile's rows' 32-bit pairs (two int16) are contiguous — `pairs[((t·blocks + b)·16 + p)·R + i]`
/// for row `R·t + i` — so every broadcast in an inner loop is a constant offset from one pointer.
/// Scales: `scales[(t·blocks + b)·R + i]`. Rows past the end are zeros.
final class WideActivations {
    let rows: Int
    let tileRows: Int
    let tiles: Int
    let blocks: Int
    let pairs: UnsafeMutablePointer<Int32>
    let scales: UnsafeMutablePointer<Float>
    /// Reused scratch memory (prefill and vision make one of these per product; fresh pages for each
    /// would cost a page fault per 4 KiB, several ms per vision block).
    private let pairStorage: TileBuffer, scaleStorage: TileBuffer

    /// Int32 pairs of one tile (all blocks).
    var pairsPerTile: Int { blocks * 16 * tileRows }
    var scalesPerTile: Int { blocks * tileRows }

    init(_ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int, tileRows: Int) {
        self.rows = rows
        self.tileRows = tileRows
        tiles = (rows + tileRows - 1) / tileRows
        blocks = (columns + quantBlock - 1) / quantBlock
        pairStorage = TileBuffers.take(tiles * blocks * 16 * tileRows)
        scaleStorage = TileBuffers.take(tiles * blocks * tileRows)
        pairs = UnsafeMutableRawPointer(pairStorage.pointer).bindMemory(to: Int32.self, capacity: tiles * blocks * 16 * tileRows)
        scales = scaleStorage.pointer
        let (pairs, scales, blocks) = (self.pairs, self.scales, self.blocks)
        // Padding rows of the last tile are zeros (the buffers are reused, so clear them here).
        for r in rows..<(tiles * tileRows) {
            let t = r / tileRows, i = r % tileRows
            for b in 0..<blocks {
                scales[(t * blocks + b) * tileRows + i] = 0
                for p in 0..<16 { pairs[((t * blocks + b) * 16 + p) * tileRows + i] = 0 }
            }
        }
        quantizeRowsQ8(x, rows: rows, columns: columns, ld: ld) { r, q, rowScales in
            let t = r / tileRows, i = r % tileRows
            for b in 0..<blocks {
                scales[(t * blocks + b) * tileRows + i] = rowScales[b]
                let dst = pairs + (t * blocks + b) * 16 * tileRows + i, src = q + b * quantBlock
                for p in 0..<16 {
                    let low = UInt32(UInt16(bitPattern: Int16(src[2 * p])))
                    let high = UInt32(UInt16(bitPattern: Int16(src[2 * p + 1])))
                    dst[p * tileRows] = Int32(bitPattern: low | high << 16)
                }
            }
        }
    }

    deinit {
        TileBuffers.give(pairStorage)
        TileBuffers.give(scaleStorage)
    }
}
