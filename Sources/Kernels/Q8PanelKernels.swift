import Foundation
import KernelsSIMD

// Q8 weights × a few activation rows — decode (1 row) and batched decode (2–64 rows, one per
// sequence sharing the step). The weights are streamed from memory once per call in their stored
// panel order (Q8Matrix): for each pair of inputs, 32 contiguous bytes hold 16 output features' two
// values, widened by two `vpmovsxbw` and multiplied with `vpmaddwd` against each activation row's
// broadcast pair. Output features are the vector lanes, so each block costs one scale fold per
// (activation row, 8 features) instead of a horizontal sum and a scale per (row, feature), and the
// activation rows of a tile share every weight load and widening: per pair of inputs, 4 rows take
// 2 widening loads + 4 broadcasts + 8 `vpmaddwd` + 8 `vpaddd` for 128 multiply-adds.

/// Activation rows per tile of the few-rows kernel.
let smallTileRows = 4

/// Weight streams per core in single-row products (decode); see `oneRowPanels`.
let decodeStreams = 4

extension QuantizedGEMM {
    /// `y[r, o] (+)= Σ_k x[r, k]·W[o, k] + bias[o]` for a few rows; panels of 16 features are split
    /// across threads.
    static func panelProductFewRows(_ w: Q8Matrix, _ x: UnsafePointer<Float>, rows: Int, ldx: Int,
                                    into y: UnsafeMutablePointer<Float>, ldy: Int,
                                    bias: UnsafePointer<Float>?, accumulate: Bool) {
        let a = WideActivations(x, rows: rows, columns: w.columns, ld: ldx, tileRows: smallTileRows)
        let n = w.rows, blocks = w.blocks
        withExtendedLifetime(a) {
            Parallel.forRanges(w.panels, minimumPerThread: 4) { range in
                let tile = alignedZeroed(Float.self, count: smallTileRows * 16)
                defer { UnsafeMutableRawPointer(tile).deallocate() }
                if rows == 1 {
                    // Decode: `decodeStreams` panels from equal parts of this thread's range at a time,
                    // so the core keeps that many independent streams of weight misses in flight.
                    let streams = min(decodeStreams, range.count)
                    let part = (range.count + streams - 1) / streams
                    let panelPointers = UnsafeMutablePointer<UnsafePointer<Int8>>.allocate(capacity: 4)
                    let scalePointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 4)
                    let panelIndexes = UnsafeMutablePointer<Int>.allocate(capacity: 4)
                    defer { panelPointers.deallocate(); scalePointers.deallocate(); panelIndexes.deallocate() }
                    for i in 0..<part {
                        var live = 0
                        for stream in 0..<streams where stream * part + i < range.count {
                            let panel = range.lowerBound + stream * part + i
                            panelPointers[live] = UnsafePointer(w.quants + panel * blocks * Q8Matrix.panelBlockBytes)
                            scalePointers[live] = UnsafePointer(w.scales + panel * blocks * 16)
                            panelIndexes[live] = panel
                            live += 1
                        }
                        tile.update(repeating: 0, count: 64)
                        switch live {
                        case 1: oneRowPanels(1, panelPointers, scalePointers, a.pairs, a.scales, blocks: blocks, tile)
                        case 2: oneRowPanels(2, panelPointers, scalePointers, a.pairs, a.scales, blocks: blocks, tile)
                        case 3: oneRowPanels(3, panelPointers, scalePointers, a.pairs, a.scales, blocks: blocks, tile)
                        default: oneRowPanels(4, panelPointers, scalePointers, a.pairs, a.scales, blocks: blocks, tile)
                        }
                        for which in 0..<live {
                            let n0 = panelIndexes[which] * 16, width = min(16, n - n0), src = tile + which * 16
                            for c in 0..<width {
                                let value = src[c] + (bias?[n0 + c] ?? 0)
                                y[n0 + c] = accumulate ? y[n0 + c] + value : value
                            }
                        }
                    }
                    return
                }
                for panel in range {
                    let quants = w.quants + panel * blocks * Q8Matrix.panelBlockBytes
                    let scales = w.scales + panel * blocks * 16
                    let n0 = panel * 16, width = min(16, n - n0)
                    for t in 0..<a.tiles {
                        let r0 = t * smallTileRows, count = min(smallTileRows, rows - r0)
                        tile.update(repeating: 0, count: smallTileRows * 16)
                        let pairs = a.pairs + t * a.pairsPerTile, pairScales = a.scales + t * a.scalesPerTile
                        switch count {
                        case 1: fewRowsTile(1, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        case 2: fewRowsTile(2, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        case 3: fewRowsTile(3, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        default: fewRowsTile(4, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        }
                        for i in 0..<count {
                            let dst = y + (r0 + i) * ldy + n0, src = tile + i * 16
                            for c in 0..<width {
                                let value = src[c] + (bias?[n0 + c] ?? 0)
                                dst[c] = accumulate ? dst[c] + value : value
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `rowCount` (1…4, a constant at each call site so the unused rows compile away) activation rows of
/// one tile × the 16 features of one panel, over all blocks, into `c` (row stride 16).
@inline(__always)
private func fewRowsTile(_ rowCount: Int, _ quants: UnsafePointer<Int8>, _ wScales: UnsafePointer<Float>,
                         _ pairs: UnsafePointer<Int32>, _ aScales: UnsafePointer<Float>, blocks: Int,
                         _ c: UnsafeMutablePointer<Float>) {
    for b in 0..<blocks {
        var s00 = Ints8(), s01 = Ints8(), s10 = Ints8(), s11 = Ints8()
        var s20 = Ints8(), s21 = Ints8(), s30 = Ints8(), s31 = Ints8()
        var wp = UnsafeRawPointer(quants + b &* Q8Matrix.panelBlockBytes)
        var ap = pairs + b &* (16 * smallTileRows)
        for _ in 0..<16 {
            let w0 = widenPairs(wp), w1 = widenPairs(wp + 16)
            @inline(__always) func row(_ i: Int, _ lo: inout Ints8, _ hi: inout Ints8) {
                lo = dotPairs(lo, ap[i], w0)
                hi = dotPairs(hi, ap[i], w1)
            }
            row(0, &s00, &s01)
            if rowCount > 1 { row(1, &s10, &s11) }
            if rowCount > 2 { row(2, &s20, &s21) }
            if rowCount > 3 { row(3, &s30, &s31) }
            wp += 32
            ap += smallTileRows
        }
        let sw0 = load8(wScales + b &* 16), sw1 = load8(wScales + b &* 16 + 8)
        let sa = aScales + b &* smallTileRows
        @inline(__always) func foldRow(_ i: Int, _ lo: Ints8, _ hi: Ints8) {
            let scale = Floats8(repeating: sa[i])
            fold(lo, sw0 * scale, into: c + i &* 16)
            fold(hi, sw1 * scale, into: c + i &* 16 + 8)
        }
        foldRow(0, s00, s01)
        if rowCount > 1 { foldRow(1, s10, s11) }
        if rowCount > 2 { foldRow(2, s20, s21) }
        if rowCount > 3 { foldRow(3, s30, s31) }
    }
}

/// One activation row × `streams` panels (`panels[i]`, scales `scales[i]`); panel `i`'s 16 results
/// go to `c[16i ..< 16i + 16]`. Decode is bound by how many weight misses a core keeps in flight:
/// independent streams (panels far apart in memory) measured 25.7 / 32 / 35 GB/s with one / two /
/// four streams per core on the 311 MB output matrix (2 threads).
@inline(__always)
private func oneRowPanels(_ streams: Int, _ panels: UnsafePointer<UnsafePointer<Int8>>, _ scales: UnsafePointer<UnsafePointer<Float>>,
                          _ pairs: UnsafePointer<Int32>, _ aScales: UnsafePointer<Float>, blocks: Int,
                          _ c: UnsafeMutablePointer<Float>) {
    let q0 = UnsafeRawPointer(panels[0]), q1 = UnsafeRawPointer(panels[min(1, streams - 1)])
    let q2 = UnsafeRawPointer(panels[min(2, streams - 1)]), q3 = UnsafeRawPointer(panels[min(3, streams - 1)])
    for b in 0..<blocks {
        var s0 = Ints8(), s1 = Ints8(), s2 = Ints8(), s3 = Ints8(), s4 = Ints8(), s5 = Ints8(), s6 = Ints8(), s7 = Ints8()
        var ap = pairs + b &* (16 * smallTileRows)
        var o = b &* Q8Matrix.panelBlockBytes
        for _ in 0..<16 {
            let x = ap[0]
            s0 = dotPairs(s0, x, widenPairs(q0 + o))
            s1 = dotPairs(s1, x, widenPairs(q0 + o + 16))
            if streams > 1 {
                s2 = dotPairs(s2, x, widenPairs(q1 + o))
                s3 = dotPairs(s3, x, widenPairs(q1 + o + 16))
            }
            if streams > 2 {
                s4 = dotPairs(s4, x, widenPairs(q2 + o))
                s5 = dotPairs(s5, x, widenPairs(q2 + o + 16))
            }
            if streams > 3 {
                s6 = dotPairs(s6, x, widenPairs(q3 + o))
                s7 = dotPairs(s7, x, widenPairs(q3 + o + 16))
            }
            o &+= 32
            ap += smallTileRows
        }
        let scale = Floats8(repeating: aScales[b &* smallTileRows])
        @inline(__always) func foldPanel(_ i: Int, _ lo: Ints8, _ hi: Ints8) {
            let ws = scales[i] + b &* 16, cp = c + i &* 16
            fold(lo, load8(ws) * scale, into: cp)
            fold(hi, load8(ws + 8) * scale, into: cp + 8)
        }
        foldPanel(0, s0, s1)
        if streams > 1 { foldPanel(1, s2, s3) }
        if streams > 2 { foldPanel(2, s4, s5) }
        if streams > 3 { foldPanel(3, s6, s7) }
    }
}

/// Naive twin of `fewRowsTile` (plain integer loops over the same layouts), for tests.
func fewRowsTileNaive(_ rowCount: Int, _ quants: UnsafePointer<Int8>, _ wScales: UnsafePointer<Float>,
                         _ pairs: UnsafePointer<Int32>, _ aScales: UnsafePointer<Float>, blocks: Int,
                         _ c: UnsafeMutablePointer<Float>) {
    var sums = [Int32](repeating: 0, count: 16)
    for i in 0..<rowCount {
        for b in 0..<blocks {
            for f in 0..<16 { sums[f] = 0 }
            for p in 0..<16 {
                let pair = UInt32(bitPattern: pairs[(b * 16 + p) * smallTileRows + i])
                let x0 = Int32(Int16(truncatingIfNeeded: pair)), x1 = Int32(Int16(truncatingIfNeeded: pair >> 16))
                let wp = quants + b * Q8Matrix.panelBlockBytes + p * 32
                for f in 0..<16 { sums[f] &+= Int32(wp[2 * f]) &* x0 &+ Int32(wp[2 * f + 1]) &* x1 }
            }
            let sa = aScales[b * smallTileRows + i]
            for f in 0..<16 { c[i * 16 + f] += Float(sums[f]) * (wScales[b * 16 + f] * sa) }
        }
    }
}
