import Foundation
import Tensors
#if POSTLENS_AVX2
import _Builtin_intrinsics.intel

// The integer GEMM of prefill and vision: `y[M, N] = x[M, K] · Wᵀ` with `W` in Q8 (or Q4) blocks and
// `x` quantized to Q8 blocks per row, computed with AVX2 `vpmaddwd` on 16-bit lanes.
//
// Why 16-bit: without VNNI, `vpmaddwd` is the widest exact integer multiply-add of AVX2. One
// instruction does 16 multiply-adds (8 lanes × a pair), twice the 8 of an fp32 FMA, at the same
// issue rate — so an int8 GEMM can beat the fp32 sgemm peak, which the prefill and vision targets
// need. (`vpmaddubsw` does 32 but needs the sign trick on both operands per product and saturates.)
//
// Layout, as in a BLAS microkernel:
// - Activations: each row quantized to Q8 blocks (scale per 32 values), widened to int16. A pair of
//   consecutive values is one 32-bit word that `vpbroadcastd` spreads over the 8 lanes.
// - Weights: 16 output features at a time ("panel") are widened to int16 (Q8 is stored in this
//   order, see Q8Matrix; Q4 is transposed here) so that, for each pair of inputs,
//   the 16 features' two int16 values are contiguous: `panel[b][p][c][2]` for block `b`, pair `p`
//   (0…15), feature `c` (0…15). `vpmaddwd(broadcast(x pair), panel row)` gives 8 features' partial
//   dot products in int32 lanes. The panel (1 KiB per block) stays in L2 while every activation
//   row passes over it.
// - Microkernel: 6 activation rows × 16 features, 12 int32 accumulators over one block of 32 inputs
//   (|sum| ≤ 32·127² fits easily); then each block is folded into F32 with its two scales
//   (`w scale[c] · x scale[row]`), since both sides change scale every block.

/// A quantized weight matrix the packed kernel can read 16 output features ("a panel") at a time.
protocol PanelSource {
    var rows: Int { get }
    var blocks: Int { get }
    /// Writes panel `index` (features `16·index …< 16·index + 16`) as int16 pairs into `panel`
    /// (`blocks × panelBlockValues`: per block, pair `p`, feature `c`: `[p·32 + 2c]`, `+1`) and the
    /// features' scales into `panelScales` (`blocks × 16`); features past `rows` are zeros.
    func packPanel(_ index: Int, panel: UnsafeMutablePointer<Int16>, panelScales: UnsafeMutablePointer<Float>,
                   work: PanelWorkspace)
}

/// Int16 values of one panel block: 16 pairs × 16 features × 2.
let panelBlockValues = 512

extension Q8Matrix: PanelSource {
    /// The stored panel is already in this order as int8: widen each 16-byte half with `vpmovsxbw`.
    @inline(__always)
    func packPanel(_ index: Int, panel: UnsafeMutablePointer<Int16>, panelScales: UnsafeMutablePointer<Float>,
                   work: PanelWorkspace) {
        let source = UnsafeRawPointer(quants + index * blocks * Q8Matrix.panelBlockBytes)
        let destination = UnsafeMutableRawPointer(panel)
        for chunk in 0..<(blocks * Q8Matrix.panelBlockBytes / 16) {
            let bytes = _mm_loadu_si128((source + chunk * 16).assumingMemoryBound(to: __m128i.self))
            _mm256_storeu_si256((destination + chunk * 32).assumingMemoryBound(to: __m256i.self), _mm256_cvtepi8_epi16(bytes))
        }
        panelScales.update(from: scales + index * blocks * 16, count: blocks * 16)
    }
}

extension Q4Matrix: PanelSource {
    /// Row-major nibbles: unpack 16 rows' block to int8, then transpose pairs into panel order.
    @inline(__always)
    func packPanel(_ index: Int, panel: UnsafeMutablePointer<Int16>, panelScales: UnsafeMutablePointer<Float>,
                   work: PanelWorkspace) {
        let n0 = index * 16
        let mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8)
        for b in 0..<blocks {
            for c in 0..<16 {
                let n = n0 + c
                panelScales[b * 16 + c] = n < rows ? scales[n * blocks + b] : 0
                guard n < rows else { work.rowPointers[c] = UnsafePointer(work.zeros); continue }
                let raw = _mm_loadu_si128(UnsafeRawPointer(quants + n * (paddedColumns / 2) + b * 16)
                    .assumingMemoryBound(to: __m128i.self))
                let low = _mm_sub_epi8(_mm_and_si128(raw, mask), eight)
                let high = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight)
                let out = UnsafeMutableRawPointer(work.scratch + c * 32)
                _mm_storeu_si128(out.assumingMemoryBound(to: __m128i.self), low)
                _mm_storeu_si128((out + 16).assumingMemoryBound(to: __m128i.self), high)
                work.rowPointers[c] = UnsafePointer(work.scratch + c * 32)
            }
            transposePairs(work.rowPointers, into: panel + b * panelBlockValues)
        }
    }
}

/// 16 rows × 32 int8 values (one block; `rows[c]` points at row `c`) into panel order as int16: per
/// group of 8 rows and half-block, an 8×8 transpose of 16-bit units (each a pair of int8 inputs) with
/// SSE2 unpacks, then `vpmovsxbw` widens each transposed unit row into 8 features' int16 pairs.
@inline(__always)
func transposePairs(_ rows: UnsafeMutablePointer<UnsafePointer<Int8>>, into out: UnsafeMutablePointer<Int16>) {
    for group in 0..<2 {
        for half in 0..<2 {
            @inline(__always) func row(_ i: Int) -> __m128i {
                _mm_loadu_si128(UnsafeRawPointer(rows[group * 8 + i] + half * 16).assumingMemoryBound(to: __m128i.self))
            }
            let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7)
            let a0 = _mm_unpacklo_epi16(r0, r1), a1 = _mm_unpackhi_epi16(r0, r1)
            let a2 = _mm_unpacklo_epi16(r2, r3), a3 = _mm_unpackhi_epi16(r2, r3)
            let a4 = _mm_unpacklo_epi16(r4, r5), a5 = _mm_unpackhi_epi16(r4, r5)
            let a6 = _mm_unpacklo_epi16(r6, r7), a7 = _mm_unpackhi_epi16(r6, r7)
            let b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2)
            let b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3)
            let b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6)
            let b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7)
            @inline(__always) func store(_ u: Int, _ v: __m128i) {
                let dst = UnsafeMutableRawPointer(out + (half * 8 + u) * 32 + group * 16)
                _mm256_storeu_si256(dst.assumingMemoryBound(to: __m256i.self), _mm256_cvtepi8_epi16(v))
            }
            store(0, _mm_unpacklo_epi64(b0, b4)); store(1, _mm_unpackhi_epi64(b0, b4))
            store(2, _mm_unpacklo_epi64(b1, b5)); store(3, _mm_unpackhi_epi64(b1, b5))
            store(4, _mm_unpacklo_epi64(b2, b6)); store(5, _mm_unpackhi_epi64(b2, b6))
            store(6, _mm_unpacklo_epi64(b3, b7)); store(7, _mm_unpackhi_epi64(b3, b7))
        }
    }
}

/// Activation rows per microkernel call: 6 rows × 16 features keep 12 int32 accumulators, the two
/// weight vectors and one broadcast in the 16 ymm registers; per pair of inputs that is 2 loads, 6
/// broadcasts, 12 `vpmaddwd` and 12 `vpaddd` (4 rows would spend a larger share of the 6-wide
/// dispatch on loads and loop overhead).
let packedTileRows = 6

/// One tile of `packedTileRows` activation rows × 16 features over `blocks`, added into `c` (row
/// stride 16). `a` and `aScales` point at the tile in `WideActivations`' interleaved layout.
@inline(__always)
func packedMicrokernel(_ a: UnsafePointer<Int32>, _ aScales: UnsafePointer<Float>,
                       panel: UnsafePointer<Int16>, panelScales: UnsafePointer<Float>,
                       blocks: Range<Int>, c: UnsafeMutablePointer<Float>) {
    @inline(__always) func load(_ p: UnsafePointer<Int16>) -> __m256i {
        _mm256_loadu_si256(UnsafeRawPointer(p).assumingMemoryBound(to: __m256i.self))
    }
    for b in blocks {
        var s00 = _mm256_setzero_si256(), s01 = _mm256_setzero_si256()
        var s10 = _mm256_setzero_si256(), s11 = _mm256_setzero_si256()
        var s20 = _mm256_setzero_si256(), s21 = _mm256_setzero_si256()
        var s30 = _mm256_setzero_si256(), s31 = _mm256_setzero_si256()
        var s40 = _mm256_setzero_si256(), s41 = _mm256_setzero_si256()
        var s50 = _mm256_setzero_si256(), s51 = _mm256_setzero_si256()
        var wp = panel + b &* panelBlockValues
        var ap = a + b &* (16 * packedTileRows)
        for _ in 0..<16 {
            let w0 = load(wp), w1 = load(wp + 16)
            @inline(__always) func row(_ i: Int, _ lo: inout __m256i, _ hi: inout __m256i) {
                let x = _mm256_set1_epi32(ap[i])
                lo = _mm256_add_epi32(lo, _mm256_madd_epi16(x, w0))
                hi = _mm256_add_epi32(hi, _mm256_madd_epi16(x, w1))
            }
            row(0, &s00, &s01)
            row(1, &s10, &s11)
            row(2, &s20, &s21)
            row(3, &s30, &s31)
            row(4, &s40, &s41)
            row(5, &s50, &s51)
            wp += 32
            ap += packedTileRows
        }
        let sw0 = _mm256_loadu_ps(panelScales + b &* 16), sw1 = _mm256_loadu_ps(panelScales + b &* 16 + 8)
        let sa = aScales + b &* packedTileRows
        @inline(__always) func fold(_ row: Int, _ lo: __m256i, _ hi: __m256i) {
            let scale = _mm256_set1_ps(sa[row])
            let cp = c + row &* 16
            _mm256_storeu_ps(cp, _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(sw0, scale), _mm256_loadu_ps(cp)))
            _mm256_storeu_ps(cp + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(sw1, scale), _mm256_loadu_ps(cp + 8)))
        }
        fold(0, s00, s01)
        fold(1, s10, s11)
        fold(2, s20, s21)
        fold(3, s30, s31)
        fold(4, s40, s41)
        fold(5, s50, s51)
    }
}

/// Blocks of 32 inputs per pass over the activation tiles (256 inputs): the panel's slice for one
/// pass (8 KiB) stays in L1 while every tile of activations streams past it from L2, instead of each
/// tile re-reading the whole panel (up to 192 KiB at K = 6,144) from L2.
let packedPassBlocks = 8

/// Per-thread buffers of the packed product.
final class PanelWorkspace {
    let panel: UnsafeMutablePointer<Int16>
    let panelScales: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Int8>
    let zeros: UnsafeMutablePointer<Int8>
    let rowPointers: UnsafeMutablePointer<UnsafePointer<Int8>>
    /// F32 results of every tile for the current panel (`tiles × packedTileRows × 16`).
    let results: UnsafeMutablePointer<Float>
    let resultCount: Int

    init(blocks: Int, tiles: Int) {
        panel = alignedZeroed(Int16.self, count: blocks * panelBlockValues)
        panelScales = alignedZeroed(Float.self, count: blocks * 16)
        scratch = alignedZeroed(Int8.self, count: 16 * 32)
        zeros = alignedZeroed(Int8.self, count: 32)
        rowPointers = .allocate(capacity: 16)
        rowPointers.initialize(repeating: UnsafePointer(zeros), count: 16)
        resultCount = tiles * packedTileRows * 16
        results = alignedZeroed(Float.self, count: resultCount)
    }

    deinit {
        UnsafeMutableRawPointer(panel).deallocate()
        UnsafeMutableRawPointer(panelScales).deallocate()
        UnsafeMutableRawPointer(scratch).deallocate()
        UnsafeMutableRawPointer(zeros).deallocate()
        rowPointers.deallocate()
        UnsafeMutableRawPointer(results).deallocate()
    }
}

extension QuantizedGEMM {
    /// `y[r, o] (+)= Σ_k x[r, k]·W[o, k] + bias[o]` through the packed int16 kernel. Panels of 16
    /// features are split across threads; each thread packs a panel, then makes passes of
    /// `packedPassBlocks` blocks over every tile of activation rows.
    static func packedProduct<S: PanelSource>(_ w: S, _ x: UnsafePointer<Float>, rows: Int, columns k: Int, ldx: Int,
                                              into y: UnsafeMutablePointer<Float>, ldy: Int,
                                              bias: UnsafePointer<Float>?, accumulate: Bool) {
        let a = WideActivations(x, rows: rows, columns: k, ld: ldx, tileRows: packedTileRows)
        let n = w.rows, blocks = w.blocks
        let panels = (n + 15) / 16
        withExtendedLifetime(a) {
            Parallel.forRanges(panels) { range in
                let work = PanelWorkspace(blocks: blocks, tiles: a.tiles)
                for panelIndex in range {
                    let n0 = panelIndex * 16
                    w.packPanel(panelIndex, panel: work.panel, panelScales: work.panelScales, work: work)
                    work.results.update(repeating: 0, count: work.resultCount)
                    var b0 = 0
                    while b0 < blocks {
                        let pass = b0..<min(blocks, b0 + packedPassBlocks)
                        for t in 0..<a.tiles {
                            packedMicrokernel(a.pairs + t * a.pairsPerTile, a.scales + t * a.scalesPerTile,
                                              panel: work.panel, panelScales: work.panelScales, blocks: pass,
                                              c: work.results + t * packedTileRows * 16)
                        }
                        b0 = pass.upperBound
                    }
                    let width = min(16, n - n0)
                    for r in 0..<rows {
                        let dst = y + r * ldy + n0, src = work.results + r * 16
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
#endif
