import Foundation
import KernelsSIMD
import Tensors

// Quantized products. Two paths, chosen by the number of activation rows:
//
// - Few rows (decode, batched decode ≤ `QuantizedGEMM.smallBatchLimit`): the activations are
//   quantized to Q8 blocks too. Q8 weights go through `Q8PanelKernels.swift` (panel-major weights,
//   `vpmaddwd` with the output features as lanes). Q4 weights use integer block dot products here
//   (`vpmaddubsw` + `vpmaddwd`), each weight row meeting up to 4 activation rows per load. Either
//   way the weights are read from memory once per call, so a batch of sequences costs about one pass
//   over them.
// - Many rows (prefill, vision): the packed int16 GEMM (`PackedIntegerGEMM.swift`, AVX2 builds),
//   or — portable builds — tiles of weight rows dequantized to F32 and multiplied by OpenBLAS sgemm.

/// Portable Q4 twin: nibbles are unpacked with shifts; `(n − 8)·x` summed per block.
@inline(__always)
public func dotQ4Portable(_ w: UnsafePointer<UInt8>, _ ws: UnsafePointer<Float>,
                          _ x: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ xsums: UnsafePointer<Int32>,
                          blocks: Int) -> Float {
    var acc: Float = 0
    for b in 0..<blocks {
        let wb = w + b * (quantBlock / 2), xb = x + b * quantBlock
        var s: Int32 = 0
        for j in 0..<(quantBlock / 2) {
            s &+= Int32(wb[j] & 0x0F) &* Int32(xb[j]) &+ Int32(wb[j] >> 4) &* Int32(xb[j + 16])
        }
        acc += Float(s &- 8 &* xsums[b]) * (ws[b] * xs[b])
    }
    return acc
}

/// Q4·Q8 dot product over `blocks` blocks (`nibbleDot` per block, F32 accumulation). The +8 storage
/// offset is removed afterwards with the activation block's precomputed sum: `Σ(n−8)x = Σnx − 8Σx`.
@inline(__always)
func dotQ4(_ w: UnsafePointer<UInt8>, _ ws: UnsafePointer<Float>,
           _ x: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>, _ xsums: UnsafePointer<Int32>, blocks: Int) -> Float {
    var acc = Floats8()
    var correction: Float = 0
    for b in 0..<blocks {
        let d = ws[b] * xs[b]
        acc = fma(floats(nibbleDot(w + b &* 16, x + b &* 32)), Floats8(repeating: d), acc)
        correction += d * Float(xsums[b])
    }
    return sum(acc) - 8 * correction
}

/// One Q4 weight row against 4 activation rows (rows `ldq` / `lds` apart).
@inline(__always)
func dotQ4x4(_ w: UnsafePointer<UInt8>, _ ws: UnsafePointer<Float>, _ x: UnsafePointer<Int8>, _ xs: UnsafePointer<Float>,
             _ xsums: UnsafePointer<Int32>, ldq: Int, lds: Int, blocks: Int) -> SIMD4<Float> {
    var acc0 = Floats8(), acc1 = Floats8(), acc2 = Floats8(), acc3 = Floats8()
    var correction = SIMD4<Float>()
    for b in 0..<blocks {
        let sw = ws[b], wb = w + b &* 16
        @inline(__always) func row(_ r: Int, _ acc: inout Floats8) -> Float {
            let d = sw * xs[r &* lds + b]
            acc = fma(floats(nibbleDot(wb, x + r &* ldq + b &* 32)), Floats8(repeating: d), acc)
            return d * Float(xsums[r &* lds + b])
        }
        correction += SIMD4(row(0, &acc0), row(1, &acc1), row(2, &acc2), row(3, &acc3))
    }
    return SIMD4(sum(acc0), sum(acc1), sum(acc2), sum(acc3)) - 8 * correction
}

// MARK: - Products

/// Entry points of the quantized products; `LinearWeight.forward` dispatches here.
public enum QuantizedGEMM {
    /// Up to this many activation rows use the integer dot-product path (one pass over the weights
    /// for all rows); more rows use dequantized tiles + sgemm. Measured at K=2048, N=6144 (shared,
    /// loaded 2-core machine, noisy): the integer path ≈ 50–55 GFLOPS at 16–128 rows, the tiled sgemm
    /// 16 / 24 / 35 / 44 GFLOPS at 16 / 32 / 64 / 128 rows and ≈ 77 at 256.
    nonisolated(unsafe) public static var smallBatchLimit = 64

    /// Target size of the F32 tile buffer (bytes). Large enough that sgemm's per-call packing of the
    /// activations is amortized over many weight rows; small next to the 4-byte weights it replaces.
    /// Measured 1 MiB ≥ 4 MiB ≥ 8 MiB at M=256, K=2048 (the tile stays in L2/L3 between its
    /// dequantization and sgemm's packing of it).
    nonisolated(unsafe) public static var tileBytes = 1 << 20

    /// The kernel for more than `smallBatchLimit` rows.
    public enum LargeBatchKernel: Sendable {
        /// Int8 activations and weights multiplied in int16 lanes (`PackedIntegerGEMM.swift`).
        case packedInteger
        /// Dequantized F32 weight tiles through OpenBLAS sgemm (F32 activations; the portable path).
        case tiledSGEMM
    }

    /// Which kernel multiplies more than `smallBatchLimit` `.pairs`/Q4 rows at the avx2 level (the portable
    /// level uses tiled sgemm: its integer words are plain loops). Tests and benchmarks switch it.
    nonisolated(unsafe) public static var largeBatchKernel = LargeBatchKernel.packedInteger

    /// Whether products of more than `smallBatchLimit` rows run the packed integer kernel at the active level.
    public static var usesPackedIntegerKernel: Bool {
        largeBatchKernel == .packedInteger && KernelDispatch.level >= .avx2
    }

    /// `y[r, o] (+)= Σ_k x[r, k]·W[o, k] + bias[o]` for a Q8 `W`.
    public static func forward(_ w: Q8Matrix, _ x: UnsafePointer<Float>, rows: Int, ldx: Int,
                               into y: UnsafeMutablePointer<Float>, ldy: Int,
                               bias: UnsafePointer<Float>?, accumulate: Bool) {
        guard rows > 0, w.rows > 0 else { return }
        if w.layout == .quads {
            quadProduct(w, x, rows: rows, ldx: ldx, into: y, ldy: ldy, bias: bias, accumulate: accumulate)
            return
        }
        if rows <= smallBatchLimit {
            panelProductFewRows(w, x, rows: rows, ldx: ldx, into: y, ldy: ldy, bias: bias, accumulate: accumulate)
        } else {
            if usesPackedIntegerKernel {
                packedProduct(w, x, rows: rows, columns: w.columns, ldx: ldx, into: y, ldy: ldy, bias: bias,
                              accumulate: accumulate)
                return
            }
            tiledProduct(x, rows: rows, ldx: ldx, inner: w.columns, columns: w.rows, y: y, ldy: ldy,
                         bias: bias, accumulate: accumulate) { range, out in
                dequantizeRowsQ8(w, range, into: out, ld: w.columns)
            }
        }
    }

    /// Same for a Q4 `W`.
    public static func forward(_ w: Q4Matrix, _ x: UnsafePointer<Float>, rows: Int, ldx: Int,
                               into y: UnsafeMutablePointer<Float>, ldy: Int,
                               bias: UnsafePointer<Float>?, accumulate: Bool) {
        guard rows > 0, w.rows > 0 else { return }
        if rows <= smallBatchLimit {
            let a = Q8Activations(x, rows: rows, columns: w.columns, ld: ldx)
            let rowBytes = w.paddedColumns / 2
            integerProduct(outputs: w.rows, activations: a, y: y, ldy: ldy, bias: bias, accumulate: accumulate, dot: { o, r in
                dotQ4(w.quants + o * rowBytes, w.scales + o * w.blocks,
                      a.quants + r * a.paddedColumns, a.scales + r * a.blocks, a.sums + r * a.blocks, blocks: w.blocks)
            }, dot4: { o, r in
                dotQ4x4(w.quants + o * rowBytes, w.scales + o * w.blocks,
                        a.quants + r * a.paddedColumns, a.scales + r * a.blocks, a.sums + r * a.blocks,
                        ldq: a.paddedColumns, lds: a.blocks, blocks: w.blocks)
            })
        } else {
            if usesPackedIntegerKernel {
                packedProduct(w, x, rows: rows, columns: w.columns, ldx: ldx, into: y, ldy: ldy, bias: bias,
                              accumulate: accumulate)
                return
            }
            tiledProduct(x, rows: rows, ldx: ldx, inner: w.columns, columns: w.rows, y: y, ldy: ldy,
                         bias: bias, accumulate: accumulate) { range, out in
                dequantizeRowsQ4(w, range, into: out, ld: w.columns)
            }
        }
    }

    /// Output features are split across threads; each weight row is used for every activation row
    /// before moving on (it is read from memory once).
    @inline(__always)
    static func integerProduct(outputs: Int, activations a: Q8Activations, y: UnsafeMutablePointer<Float>, ldy: Int,
                               bias: UnsafePointer<Float>?, accumulate: Bool, dot: (Int, Int) -> Float,
                               dot4: (Int, Int) -> SIMD4<Float>) {
        let rows = a.rows
        withExtendedLifetime(a) {
            Parallel.forRanges(outputs, minimumPerThread: 32) { range in
                for o in range {
                    let b = bias?[o] ?? 0
                    var r = 0
                    while r + 4 <= rows {
                        let v = dot4(o, r) + b
                        for i in 0..<4 {
                            let dst = y + (r + i) * ldy + o
                            dst.pointee = accumulate ? dst.pointee + v[i] : v[i]
                        }
                        r += 4
                    }
                    while r < rows {
                        let v = dot(o, r) + b
                        let dst = y + r * ldy + o
                        dst.pointee = accumulate ? dst.pointee + v : v
                        r += 1
                    }
                }
            }
        }
    }

    /// Dequantizes `tile` weight rows at a time into a reused F32 buffer (in parallel) and multiplies
    /// with OpenBLAS sgemm (itself parallel).
    static func tiledProduct(_ x: UnsafePointer<Float>, rows m: Int, ldx: Int, inner k: Int, columns n: Int,
                             y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?, accumulate: Bool,
                             tileRows: Int? = nil, dequantize: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        var tile = tileRows ?? max(16, tileBytes / max(1, 4 * k))
        tile = max(1, min(n, tileRows == nil ? (tile + 15) / 16 * 16 : tile))
        let buffer = TileBuffers.take(tile * k)
        defer { TileBuffers.give(buffer) }
        var n0 = 0
        while n0 < n {
            let tn = min(tile, n - n0)
            let start = n0
            Parallel.forRanges(tn, minimumPerThread: 8) { range in
                dequantize((start + range.lowerBound)..<(start + range.upperBound), buffer.pointer + range.lowerBound * k)
            }
            matmulTransposedB(x, rows: m, inner: k, ldx: ldx, buffer.pointer, columns: tn, ldw: k,
                              y + n0, ldy: ldy, bias: bias.map { $0 + start }, accumulate: accumulate)
            n0 += tn
        }
    }
}

/// A few scratch buffers (the tiled product's F32 weight tiles, `WideActivations`), reused across
/// calls so that a forward pass does not page-fault megabytes of fresh memory per layer. Callers on
/// other threads at the same time get their own buffer.
final class TileBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
    init(_ capacity: Int) {
        self.capacity = capacity
        pointer = alignedZeroed(Float.self, count: capacity)
    }
    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

enum TileBuffers {
    nonisolated(unsafe) static var free: [TileBuffer] = []
    static let lock = NSLock()

    static func take(_ count: Int) -> TileBuffer {
        lock.lock()
        defer { lock.unlock() }
        // Best fit: the smallest free buffer that is large enough.
        if let i = free.indices.filter({ free[$0].capacity >= count }).min(by: { free[$0].capacity < free[$1].capacity }) {
            return free.remove(at: i)
        }
        if free.count >= 8, let smallest = free.indices.min(by: { free[$0].capacity < free[$1].capacity }) {
            free.remove(at: smallest)  // full of small ones: drop one, allocate a larger one
        }
        return TileBuffer(count)
    }

    static func give(_ buffer: TileBuffer) {
        lock.lock()
        defer { lock.unlock() }
        if free.count < 8 { free.append(buffer) }
    }
}

// MARK: - Naive twins (tests)

/// `y = x·Wᵀ + b` with `W` dequantized value by value and double accumulation — no activation
/// quantization, so tests measure the kernels' total error against the exact product on the
/// quantized weights.
public func naiveQuantizedProduct(_ w: Q8Matrix, _ x: UnsafePointer<Float>, rows: Int,
                                  _ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil) {
    let k = w.columns
    for r in 0..<rows {
        for o in 0..<w.rows {
            var sum = Double(bias?[o] ?? 0)
            for i in 0..<k {
                let value = Double(w.quant(o, i)) * Double(w.scale(o, block: i / quantBlock))
                sum += Double(x[r * k + i]) * value
            }
            y[r * w.rows + o] = Float(sum)
        }
    }
}

public func naiveQuantizedProduct(_ w: Q4Matrix, _ x: UnsafePointer<Float>, rows: Int,
                                  _ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil) {
    let k = w.columns
    for r in 0..<rows {
        for o in 0..<w.rows {
            var sum = Double(bias?[o] ?? 0)
            for i in 0..<k {
                let block = i / quantBlock, j = i % quantBlock
                let byte = w.quants[o * w.paddedColumns / 2 + block * 16 + (j % 16)]
                let nibble = j < 16 ? byte & 0x0F : byte >> 4
                sum += Double(x[r * k + i]) * Double(Int(nibble) - 8) * Double(w.scales[o * w.blocks + block])
            }
            y[r * w.rows + o] = Float(sum)
        }
    }
}
