import Foundation
import KernelsSIMD
#if arch(x86_64)
import CKernels
import KernelsAVX512
#endif

// The driver of the int8 products on `Q8Layout.quads` weights: activations quantized once
// (`QuadActivations`), then, per level,
// - amx: AMX tiles (C, `Sources/CKernels/amx_q8.c`) for 16-row tiles, AVX-512 for the rest;
// - avx512: `vnniTile` / `vnniOneRow` (`Sources/KernelsAVX512`);
// - lower levels (a matrix made for avx512 run after a test forced a lower level): the portable twin.
// The weights need no packing at run time: their stored order is the order every kernel reads.

/// Rows per AVX-512 microkernel call (6 rows × 2 panels: 12 int32 and 12 F32 accumulators in registers).
let vnniTileRows = 6

/// 16-row tiles that share each pass over the blocks. Variables for the tuning benchmark (`vnniTuning`: on
/// Zen 4 one tile and passes of 8 blocks were as good as any grouping measured, within the noise).
nonisolated(unsafe) var vnniGroupTiles = 1

/// Blocks per pass (8 blocks × 2 panels × 512 bytes of weights = 8 KiB, in L1 with the tile's operands).
nonisolated(unsafe) var vnniPassBlocks = 8


extension QuantizedGEMM {
    /// `y[r, o] (+)= Σ_k x[r, k]·W[o, k] + bias[o]` for a `.quads` Q8 matrix, any number of rows.
    static func quadProduct(_ w: Q8Matrix, _ x: UnsafePointer<Float>, rows: Int, ldx: Int,
                            into y: UnsafeMutablePointer<Float>, ldy: Int,
                            bias: UnsafePointer<Float>?, accumulate: Bool) {
        let a = QuadActivations(x, rows: rows, columns: w.columns, ld: ldx)
        let level = KernelDispatch.level
        withExtendedLifetime(a) {
            #if arch(x86_64)
            if level >= .avx512 {
                if rows == 1 {
                    quadOneRow(w, a, y: y, bias: bias, accumulate: accumulate)
                } else {
                    quadTiles(w, a, amx: level == .amx, y: y, ldy: ldy, bias: bias, accumulate: accumulate)
                }
                return
            }
            #endif
            quadPortable(w, a, y: y, ldy: ldy, bias: bias, accumulate: accumulate)
        }
    }

    /// Writes a panel's results (`width` features of `count` rows, row stride `ldc`) into `y`.
    @inline(__always)
    static func store(_ results: UnsafePointer<Float>, ldc: Int, rows: Range<Int>, features n0: Int, width: Int,
                      y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?, accumulate: Bool) {
        if width == 16 {
            // Whole panels: two 8-lane words per row (scalar code here cost ≈ 20% of the products' instructions).
            let b0 = bias.map { load8($0 + n0) } ?? Floats8(), b1 = bias.map { load8($0 + n0 + 8) } ?? Floats8()
            for r in rows {
                let dst = y + r * ldy + n0, src = results + (r - rows.lowerBound) * ldc
                var v0 = load8(src) + b0, v1 = load8(src + 8) + b1
                if accumulate {
                    v0 += load8(dst)
                    v1 += load8(dst + 8)
                }
                store8(v0, dst)
                store8(v1, dst + 8)
            }
            return
        }
        for r in rows {
            let dst = y + r * ldy + n0, src = results + (r - rows.lowerBound) * ldc
            for c in 0..<width {
                let value = src[c] + (bias?[n0 + c] ?? 0)
                dst[c] = accumulate ? dst[c] + value : value
            }
        }
    }

    #if arch(x86_64)
    /// Decode: each thread streams `decodeStreams` panels from equal parts of its range at a time.
    private static func quadOneRow(_ w: Q8Matrix, _ a: QuadActivations, y: UnsafeMutablePointer<Float>,
                                   bias: UnsafePointer<Float>?, accumulate: Bool) {
        let n = w.rows, blocks = w.blocks
        let quants = UnsafeRawPointer(w.quants).assumingMemoryBound(to: UInt8.self)
        Parallel.forRanges(w.panels, minimumPerThread: 4) { range in
            let results = alignedZeroed(Float.self, count: 16 * decodeStreams)
            let panelPointers = UnsafeMutablePointer<UnsafePointer<UInt8>>.allocate(capacity: decodeStreams)
            let scalePointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: decodeStreams)
            let panelIndexes = UnsafeMutablePointer<Int>.allocate(capacity: decodeStreams)
            defer {
                UnsafeMutableRawPointer(results).deallocate()
                panelPointers.deallocate(); scalePointers.deallocate(); panelIndexes.deallocate()
            }
            let streams = min(decodeStreams, range.count)
            let part = (range.count + streams - 1) / streams
            for i in 0..<part {
                var live = 0
                for stream in 0..<streams where stream * part + i < range.count {
                    let panel = range.lowerBound + stream * part + i
                    panelPointers[live] = quants + panel * blocks * Q8Matrix.panelBlockBytes
                    scalePointers[live] = UnsafePointer(w.scales + panel * blocks * 16)
                    panelIndexes[live] = panel
                    live += 1
                }
                vnniOneRow(streams: live, a: a.quants, aScales: a.scales, aCompensation: a.compensation,
                           stride: QuadActivations.rowsPerBlock, weights: panelPointers, weightScales: scalePointers,
                           blocks: blocks, c: results)
                for which in 0..<live {
                    let n0 = panelIndexes[which] * 16
                    storePanel16(results + which * 16, ldc: 16, rows: 0..<1, features: n0, width: min(16, n - n0),
                                 y: y, ldy: n, bias: bias, accumulate: accumulate)
                }
            }
        }
    }

    /// More than one row: threads split the output features in pairs of panels. For each pair, groups of
    /// `vnniGroupTiles` 16-row tiles make passes of `vnniPassBlocks` blocks: the pass's weights (4 KiB),
    /// the group's activations for it (8 KiB) and the group's results (8 KiB) all stay in L1, and each
    /// weight load from L2 serves 64 rows instead of 8. (Measured single-threaded on Zen 4 at
    /// M=1024, K=4096: one tile over all blocks at a time ran at 55% of the microkernel's L1 speed.)
    private static func quadTiles(_ w: Q8Matrix, _ a: QuadActivations, amx: Bool, y: UnsafeMutablePointer<Float>,
                                  ldy: Int, bias: UnsafePointer<Float>?, accumulate: Bool) {
        let n = w.rows, blocks = w.blocks, rows = a.rows
        let pairs = (w.panels + 1) / 2
        let quants = UnsafeRawPointer(w.quants).assumingMemoryBound(to: UInt8.self)
        let stride = QuadActivations.rowsPerBlock
        let groupRows = 16 * vnniGroupTiles, passBlocks = vnniPassBlocks
        // Pairs are handed out two at a time: a thread slowed by the machine takes fewer.
        let queue = WorkQueue(count: pairs, grain: 2)
        Parallel.forEachThread(limit: pairs) {
            let results = alignedZeroed(Float.self, count: groupRows * 32)
            let panelPointers = UnsafeMutablePointer<UnsafePointer<UInt8>>.allocate(capacity: 2)
            let scalePointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 2)
            defer {
                UnsafeMutableRawPointer(results).deallocate()
                panelPointers.deallocate(); scalePointers.deallocate()
            }
            while let range = queue.claim() { for pair in range {
                let first = pair * 2, panels = min(2, w.panels - first)
                for p in 0..<panels {
                    panelPointers[p] = quants + (first + p) * blocks * Q8Matrix.panelBlockBytes
                    scalePointers[p] = UnsafePointer(w.scales + (first + p) * blocks * 16)
                }
                var g0 = 0
                while g0 < rows {
                    let groupCount = min(groupRows, rows - g0)
                    // The AVX-512 tiles start the first pass at zero; the AMX tiles add to what is there.
                    if amx { results.update(repeating: 0, count: groupRows * 32) }
                    var b0 = 0
                    while b0 < blocks {
                        let pass = b0..<min(blocks, b0 + passBlocks)
                        var r0 = g0
                        while r0 < g0 + groupCount {
                            let count = min(16, g0 + groupCount - r0), offset = a.rowOffset(r0)
                            let c = results + (r0 - g0) * 32
                            if amx && count == 16 {
                                postlens_amx_q8_tile(a.quants + offset * 32, a.scales + offset, a.compensation + offset,
                                                     Int32(stride), panelPointers[0], scalePointers[0], panelPointers[panels - 1],
                                                     scalePointers[panels - 1], Int32(panels), Int32(pass.lowerBound),
                                                     Int32(pass.upperBound), c, 32)
                            } else {
                                var i = 0
                                while i < count {
                                    let part = min(vnniTileRows, count - i)
                                    vnniTile(rows: part, panels: panels, a: a.quants + (offset + i) * 32, aScales: a.scales + offset + i,
                                             aCompensation: a.compensation + offset + i, stride: stride,
                                             weights: panelPointers, weightScales: scalePointers, blocks: pass,
                                             c: c + i * 32, ldc: 32, startAtZero: !amx && pass.lowerBound == 0)
                                    i += part
                                }
                            }
                            r0 += count
                        }
                        b0 = pass.upperBound
                    }
                    for p in 0..<panels {
                        let n0 = (first + p) * 16
                        storePanel16(results + p * 16, ldc: 32, rows: g0..<(g0 + groupCount), features: n0, width: min(16, n - n0),
                                     y: y, ldy: ldy, bias: bias, accumulate: accumulate)
                    }
                    g0 += groupCount
                }
            } }
        }
    }
    #endif

    /// Portable twin of the VNNI kernels over the same operands (exact int32 block sums, the same fold).
    static func quadPortable(_ w: Q8Matrix, _ a: QuadActivations, y: UnsafeMutablePointer<Float>, ldy: Int,
                             bias: UnsafePointer<Float>?, accumulate: Bool) {
        let n = w.rows, blocks = w.blocks
        let quants = UnsafeRawPointer(w.quants).assumingMemoryBound(to: UInt8.self)
        Parallel.forRanges(w.panels) { range in
            var sums = [Int32](repeating: 0, count: 16)
            let results = alignedZeroed(Float.self, count: a.rows * 16)
            defer { UnsafeMutableRawPointer(results).deallocate() }
            for panel in range {
                results.update(repeating: 0, count: a.rows * 16)
                for r in 0..<a.rows {
                    for b in 0..<blocks {
                        let i = QuadActivations.index(row: r, block: b, blocks: blocks)
                        for f in 0..<16 { sums[f] = a.compensation[i] }
                        let x = a.quants + i * quantBlock
                        let wb = quants + (panel * blocks + b) * Q8Matrix.panelBlockBytes
                        for q in 0..<8 {
                            for f in 0..<16 {
                                var s: Int32 = 0
                                for j in 0..<4 { s &+= Int32(wb[q * 64 + 4 * f + j]) &* Int32(x[4 * q + j]) }
                                sums[f] &+= s
                            }
                        }
                        let ws = w.scales + (panel * blocks + b) * 16
                        for f in 0..<16 { results[r * 16 + f] += Float(sums[f]) * (ws[f] * a.scales[i]) }
                    }
                }
                let n0 = panel * 16
                store(results, ldc: 16, rows: 0..<a.rows, features: n0, width: min(16, n - n0),
                      y: y, ldy: ldy, bias: bias, accumulate: accumulate)
            }
        }
    }
}

#if arch(x86_64)
/// The AVX-512 microkernel, for benchmarks in the test target (which does not import KernelsAVX512).
func vnniTileEntry(rows: Int, panels: Int, a: UnsafePointer<Int8>, aScales: UnsafePointer<Float>,
                   aCompensation: UnsafePointer<Int32>, stride: Int, weights: UnsafePointer<UnsafePointer<UInt8>>,
                   weightScales: UnsafePointer<UnsafePointer<Float>>, blocks: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int) {
    vnniTile(rows: rows, panels: panels, a: a, aScales: aScales, aCompensation: aCompensation, stride: stride,
             weights: weights, weightScales: weightScales, blocks: blocks, c: c, ldc: ldc)
}
#endif
