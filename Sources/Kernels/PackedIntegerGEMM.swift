import Foundation
import KernelsSIMD
import Tensors

// The integer GEMM of prefill and vision at the avx2 and portable levels: `y[M, N] = x[M, K] · Wᵀ` with `W` in Q8 (or Q4) blocks and
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
    /// The stored panel is already in this order as int8: widen each 16-byte half (`vpmovsxbw`).
    @inline(__always)
    func packPanel(_ index: Int, panel: UnsafeMutablePointer<Int16>, panelScales: UnsafeMutablePointer<Float>,
                   work: PanelWorkspace) {
        let source = UnsafeRawPointer(quants + index * blocks * Q8Matrix.panelBlockBytes)
        let destination = UnsafeMutableRawPointer(panel)
        for chunk in 0..<(blocks * Q8Matrix.panelBlockBytes / 16) {
            destination.storeBytes(of: widenPairs(source + chunk * 16), toByteOffset: chunk * 32, as: Shorts16.self)
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
        for b in 0..<blocks {
            for c in 0..<16 {
                let n = n0 + c
                panelScales[b * 16 + c] = n < rows ? scales[n * blocks + b] : 0
                guard n < rows else { work.rowPointers[c] = UnsafePointer(work.zeros); continue }
                let raw = UnsafeRawPointer(quants + n * (paddedColumns / 2) + b * 16).loadUnaligned(as: SIMD16<UInt8>.self)
                let low = (raw & 0x0F) &- 8, high = ((raw &>> 4) & 0x0F) &- 8
                let out = UnsafeMutableRawPointer(work.scratch + c * 32)
                out.storeBytes(of: low, as: SIMD16<UInt8>.self)
                out.storeBytes(of: high, toByteOffset: 16, as: SIMD16<UInt8>.self)
                work.rowPointers[c] = UnsafePointer(work.scratch + c * 32)
            }
            transposePairs(work.rowPointers, into: panel + b * panelBlockValues)
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
    for b in blocks {
        var s00 = Ints8(), s01 = Ints8(), s10 = Ints8(), s11 = Ints8(), s20 = Ints8(), s21 = Ints8()
        var s30 = Ints8(), s31 = Ints8(), s40 = Ints8(), s41 = Ints8(), s50 = Ints8(), s51 = Ints8()
        var wp = UnsafeRawPointer(panel + b &* panelBlockValues)
        var ap = a + b &* (16 * packedTileRows)
        for _ in 0..<16 {
            let w0 = wp.loadUnaligned(as: Shorts16.self), w1 = wp.loadUnaligned(fromByteOffset: 32, as: Shorts16.self)
            @inline(__always) func row(_ i: Int, _ lo: inout Ints8, _ hi: inout Ints8) {
                lo = dotPairs(lo, ap[i], w0)
                hi = dotPairs(hi, ap[i], w1)
            }
            row(0, &s00, &s01)
            row(1, &s10, &s11)
            row(2, &s20, &s21)
            row(3, &s30, &s31)
            row(4, &s40, &s41)
            row(5, &s50, &s51)
            wp += 64
            ap += packedTileRows
        }
        let sw0 = load8(panelScales + b &* 16), sw1 = load8(panelScales + b &* 16 + 8)
        let sa = aScales + b &* packedTileRows
        @inline(__always) func foldRow(_ row: Int, _ lo: Ints8, _ hi: Ints8) {
            let scale = Floats8(repeating: sa[row])
            fold(lo, sw0 * scale, into: c + row &* 16)
            fold(hi, sw1 * scale, into: c + row &* 16 + 8)
        }
        foldRow(0, s00, s01)
        foldRow(1, s10, s11)
        foldRow(2, s20, s21)
        foldRow(3, s30, s31)
        foldRow(4, s40, s41)
        foldRow(5, s50, s51)
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
            // Panels handed out two at a time: a thread slowed by the machine takes fewer.
            let queue = WorkQueue(count: panels, grain: 2)
            Parallel.forEachThread(limit: panels) {
                let work = PanelWorkspace(blocks: blocks, tiles: a.tiles)
                while let range = queue.claim() { for panelIndex in range {
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
                } }
            }
        }
    }
}
