import Foundation
#if POSTLENS_AVX2
import _Builtin_intrinsics.intel
#endif

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
                #if POSTLENS_AVX2
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
                #endif
                for panel in range {
                    let quants = w.quants + panel * blocks * Q8Matrix.panelBlockBytes
                    let scales = w.scales + panel * blocks * 16
                    let n0 = panel * 16, width = min(16, n - n0)
                    for t in 0..<a.tiles {
                        let r0 = t * smallTileRows, count = min(smallTileRows, rows - r0)
                        tile.update(repeating: 0, count: smallTileRows * 16)
                        let pairs = a.pairs + t * a.pairsPerTile, pairScales = a.scales + t * a.scalesPerTile
                        #if POSTLENS_AVX2
                        switch count {
                        case 1: fewRowsTile(1, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        case 2: fewRowsTile(2, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        case 3: fewRowsTile(3, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        default: fewRowsTile(4, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        }
                        #else
                        fewRowsTilePortable(count, quants, scales, pairs, pairScales, blocks: blocks, tile)
                        #endif
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

#if POSTLENS_AVX2
/// `rowCount` (1…4, a constant at each call site so the unused rows compile away) activation rows of
/// one tile × the 16 features of one panel, over all blocks, into `c` (row stride 16).
@inline(__always)
private func fewRowsTile(_ rowCount: Int, _ quants: UnsafePointer<Int8>, _ wScales: UnsafePointer<Float>,
                         _ pairs: UnsafePointer<Int32>, _ aScales: UnsafePointer<Float>, blocks: Int,
                         _ c: UnsafeMutablePointer<Float>) {
    @inline(__always) func widen(_ p: UnsafeRawPointer) -> __m256i {
        _mm256_cvtepi8_epi16(_mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self)))
    }
    for b in 0..<blocks {
        var s00 = _mm256_setzero_si256(), s01 = _mm256_setzero_si256()
        var s10 = _mm256_setzero_si256(), s11 = _mm256_setzero_si256()
        var s20 = _mm256_setzero_si256(), s21 = _mm256_setzero_si256()
        var s30 = _mm256_setzero_si256(), s31 = _mm256_setzero_si256()
        var wp = UnsafeRawPointer(quants + b &* Q8Matrix.panelBlockBytes)
        var ap = pairs + b &* (16 * smallTileRows)
        for _ in 0..<16 {
            let w0 = widen(wp), w1 = widen(wp + 16)
            @inline(__always) func row(_ i: Int, _ lo: inout __m256i, _ hi: inout __m256i) {
                let x = _mm256_set1_epi32(ap[i])
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(x, w0))
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(x, w1))
            }
            row(0, &s00, &s01)
            if rowCount > 1 { row(1, &s10, &s11) }
            if rowCount > 2 { row(2, &s20, &s21) }
            if rowCount > 3 { row(3, &s30, &s31) }
            wp += 32
            ap += smallTileRows
        }
        let sw0 = _mm256_loadu_ps(wScales + b &* 16), sw1 = _mm256_loadu_ps(wScales + b &* 16 + 8)
        let sa = aScales + b &* smallTileRows
        @inline(__always) func fold(_ i: Int, _ lo: __m256i, _ hi: __m256i) {
            let scale = _mm256_set1_ps(sa[i])
            let cp = c + i &* 16
            _mm256_storeu_ps(cp, _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(sw0, scale), _mm256_loadu_ps(cp)))
            _mm256_storeu_ps(cp + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(sw1, scale), _mm256_loadu_ps(cp + 8)))
        }
        fold(0, s00, s01)
        if rowCount > 1 { fold(1, s10, s11) }
        if rowCount > 2 { fold(2, s20, s21) }
        if rowCount > 3 { fold(3, s30, s31) }
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
    @inline(__always) func widen(_ p: UnsafeRawPointer) -> __m256i {
        _mm256_cvtepi8_epi16(_mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self)))
    }
    let q0 = UnsafeRawPointer(panels[0]), q1 = UnsafeRawPointer(panels[min(1, streams - 1)])
    let q2 = UnsafeRawPointer(panels[min(2, streams - 1)]), q3 = UnsafeRawPointer(panels[min(3, streams - 1)])
    for b in 0..<blocks {
        var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
        var s4 = _mm256_setzero_si256(), s5 = _mm256_setzero_si256(), s6 = _mm256_setzero_si256(), s7 = _mm256_setzero_si256()
        let offset = b &* Q8Matrix.panelBlockBytes
        var ap = pairs + b &* (16 * smallTileRows)
        var o = offset
        for _ in 0..<16 {
            let x = _mm256_set1_epi32(ap[0])
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(x, widen(q0 + o)))
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(x, widen(q0 + o + 16)))
            if streams > 1 {
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(x, widen(q1 + o)))
                s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(x, widen(q1 + o + 16)))
            }
            if streams > 2 {
                s4 = _mm256_add_epi32(s4, _mm256_madd_epi16(x, widen(q2 + o)))
                s5 = _mm256_add_epi32(s5, _mm256_madd_epi16(x, widen(q2 + o + 16)))
            }
            if streams > 3 {
                s6 = _mm256_add_epi32(s6, _mm256_madd_epi16(x, widen(q3 + o)))
                s7 = _mm256_add_epi32(s7, _mm256_madd_epi16(x, widen(q3 + o + 16)))
            }
            o &+= 32
            ap += smallTileRows
        }
        let scale = _mm256_set1_ps(aScales[b &* smallTileRows])
        @inline(__always) func fold(_ i: Int, _ lo: __m256i, _ hi: __m256i) {
            let ws = scales[i] + b &* 16, cp = c + i &* 16
            _mm256_storeu_ps(cp, _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(_mm256_loadu_ps(ws), scale), _mm256_loadu_ps(cp)))
            _mm256_storeu_ps(cp + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(_mm256_loadu_ps(ws + 8), scale), _mm256_loadu_ps(cp + 8)))
        }
        fold(0, s0, s1)
        if streams > 1 { fold(1, s2, s3) }
        if streams > 2 { fold(2, s4, s5) }
        if streams > 3 { fold(3, s6, s7) }
    }
}
#endif

/// Portable twin of `fewRowsTile` (plain integer loops over the same layouts).
func fewRowsTilePortable(_ rowCount: Int, _ quants: UnsafePointer<Int8>, _ wScales: UnsafePointer<Float>,
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
