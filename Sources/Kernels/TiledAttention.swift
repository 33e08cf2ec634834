import Foundation
import KernelsSIMD
#if arch(x86_64)
import KernelsAVX512
#endif

// Attention for many queries (prefill, vision) with our own FMA microkernels, parallel over
// (head, block of queries). The vision encoder's attention over 1,024 patches is ≈ 100 GFLOP for a
// 512×512 image, and its shapes are poor for BLAS: an inner dimension of 64 for the scores and an
// output width of 64 for probabilities·V, one call per head. Here each thread takes a head and a
// block of queries and runs both products with 6×16 register tiles at the FMA peak, the softmax in
// between on its own row block (vector exp), so no step waits on another thread.
//
// Layout:
// - Keys and values are packed once per call, per KV head (see `tiledAttention`), so the score
//   microkernel loads 16 consecutive keys' values of one dimension and broadcasts a query's, and the
//   value microkernel streams 16 dims of consecutive keys.
// - The queries of a block are copied (scaled by `scale`) into `[rows padded to 6] × headDim`.
// - Scores `[rows padded to 6] × keys padded to 16`, softmax per row over the visible keys.
// - Output: probabilities · V, 6 rows × 16 dims at a time.

/// Query rows per block handed to one thread (a multiple of 6).
let attentionQueryBlock = 48

/// Whether `tiledAttention` handles this head size (16 dims per register tile; every level).
@inline(__always)
func tiledAttentionSupports(headDim: Int) -> Bool { headDim % 16 == 0 }

/// Same contract as `attention` (see Attention.swift) for `headDim % 16 == 0`.
func tiledAttention(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim hd: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int
) {
    let group = heads / kvHeads
    let paddedKeys = (keyCount + 15) / 16 * 16
    let keyBlocks = paddedKeys / 16, dimGroups = hd / 16
    // Per KV head, keys as `[key block of 16][dim][16 keys]` and values as `[dim group of 16][key][16
    // dims]`: each score tile then reads 4 KiB contiguously and each value tile one contiguous stream,
    // instead of rows `ldkv` apart (12 KiB in the vision encoder's qkv buffer: a TLB miss per key at
    // 4,096 patches).
    let perHead = hd * paddedKeys
    // Reused scratch (8 MB per vision block at 1,024 patches: fresh pages would cost a fault per 4 KiB).
    let ktBuffer = TileBuffers.take(kvHeads * perHead), vtBuffer = TileBuffers.take(kvHeads * perHead)
    let kt = ktBuffer.pointer, vt = vtBuffer.pointer
    defer {
        TileBuffers.give(ktBuffer)
        TileBuffers.give(vtBuffer)
    }
    Parallel.forRanges(kvHeads * keyBlocks, minimumPerThread: 4) { range in
        for item in range {
            let g = item / keyBlocks, jb = item % keyBlocks
            let keys = kt + g * perHead + jb * hd * 16
            for jj in 0..<16 {
                let j = jb * 16 + jj
                if j < keyCount {
                    let kRow = k + j * ldkv + g * hd, vRow = v + j * ldkv + g * hd
                    for d in 0..<hd { keys[d * 16 + jj] = kRow[d] }
                    for dg in 0..<dimGroups {
                        (vt + g * perHead + (dg * paddedKeys + j) * 16).update(from: vRow + dg * 16, count: 16)
                    }
                } else {
                    for d in 0..<hd { keys[d * 16 + jj] = 0 }
                    for dg in 0..<dimGroups { (vt + g * perHead + (dg * paddedKeys + j) * 16).update(repeating: 0, count: 16) }
                }
            }
        }
    }
    let blocksPerHead = (queryCount + attentionQueryBlock - 1) / attentionQueryBlock
    // avx512: 12 rows × 32 columns per zmm tile; avx2 and portable: 6 × 16 per ymm tile (8-lane vectors).
    // Both divide the query block.
    let wide = KernelDispatch.level >= .avx512
    let tileRows = wide ? 12 : 6
    /// One register tile of `tileRows` rows × `groups` groups of 16 columns at the active level.
    @inline(__always)
    func tile(_ a: UnsafePointer<Float>, lda: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, groups: Int,
              count: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
        #if arch(x86_64)
        if wide {
            attentionTile(rows: 12, groups: groups, a: a, lda: lda, b0: b0, b1: b1, count: count, c: c, ldc: ldc)
            return
        }
        #endif
        tile6x16(a, lda: lda, b0, ldb: 16, count: count, c, ldc: ldc)
    }
    // (head, query block) items handed out one at a time: a thread slowed by the machine takes fewer.
    let queue = WorkQueue(count: heads * blocksPerHead, grain: 1)
    Parallel.forEachThread(limit: heads * blocksPerHead) {
        let queries = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock * hd)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock * paddedKeys)
        let output = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock * hd)
        let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock)
        defer {
            queries.deallocate()
            scores.deallocate()
            output.deallocate()
            inverseSums.deallocate()
        }
        while let range = queue.claim() { for item in range {
            let h = item / blocksPerHead, start = (item % blocksPerHead) * attentionQueryBlock
            let g = h / group
            let rows = min(attentionQueryBlock, queryCount - start)
            let paddedRows = (rows + tileRows - 1) / tileRows * tileRows
            // Keys the last query of the block can see (all of them without a causal mask).
            let visible = causalOffset.map { min(keyCount, $0 + start + rows) } ?? keyCount
            let visiblePadded = (visible + 15) / 16 * 16
            for r in 0..<paddedRows {
                let dst = queries + r * hd
                if r < rows {
                    let src = q + (start + r) * ldq + h * hd
                    for d in 0..<hd { dst[d] = src[d] * scale }
                } else {
                    dst.update(repeating: 0, count: hd)
                }
            }
            let keys = UnsafePointer(kt + g * perHead), values = UnsafePointer(vt + g * perHead)
            var r0 = 0
            while r0 < paddedRows {
                var j0 = 0
                while j0 < visiblePadded {
                    let groups = wide && j0 + 32 <= visiblePadded ? 2 : 1
                    tile(queries + r0 * hd, lda: hd, keys + j0 * hd, keys + (j0 + 16) * hd, groups: groups, count: hd,
                         scores + r0 * paddedKeys + j0, ldc: paddedKeys)
                    j0 += 16 * groups
                }
                r0 += tileRows
            }
            for r in 0..<rows {
                let row = scores + r * paddedKeys
                let limit = causalOffset.map { min(visible, $0 + start + r + 1) } ?? visible
                for j in limit..<visible { row[j] = -Float.infinity }
                // Unnormalized: the output row is divided by the sum instead (hd values, not `visible`).
                #if arch(x86_64)
                inverseSums[r] = 1 / (wide ? softmaxNumerators16(row, count: visible) : softmaxNumerators(row, count: visible))
                #else
                inverseSums[r] = 1 / softmaxNumerators(row, count: visible)
                #endif
            }
            for r in rows..<paddedRows { (scores + r * paddedKeys).update(repeating: 0, count: visible) }
            r0 = 0
            while r0 < paddedRows {
                var d0 = 0
                while d0 < hd {
                    let groups = wide && d0 + 32 <= hd ? 2 : 1
                    tile(scores + r0 * paddedKeys, lda: paddedKeys, values + (d0 / 16) * paddedKeys * 16,
                         values + (d0 / 16 + 1) * paddedKeys * 16, groups: groups, count: visible,
                         output + r0 * hd + d0, ldc: hd)
                    d0 += 16 * groups
                }
                r0 += tileRows
            }
            for r in 0..<rows {
                let dst = out + (start + r) * ldo + h * hd, src = output + r * hd, inverse = inverseSums[r]
                for d in 0..<hd { dst[d] = src[d] * inverse }
            }
        } }
    }
}

/// The AVX2 level's microkernel of both products: `c[i][0..<16] = Σ_t a[i·lda + t] · b[t·ldb + 0..<16]` for
/// 6 rows `i` over `count` terms, 12 FMA accumulators (of 16 ymm registers). Scores: `a` = queries (`lda` =
/// head size), `b` = a block of 16 packed keys (`ldb` = 16). Output: `a` = probabilities (`lda` = score row
/// stride), `b` = one group of 16 packed value dims (`ldb` = 16).
@inline(__always)
private func tile6x16(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, count: Int,
                      _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    var c00 = Floats8(), c01 = Floats8(), c10 = Floats8(), c11 = Floats8(), c20 = Floats8(), c21 = Floats8()
    var c30 = Floats8(), c31 = Floats8(), c40 = Floats8(), c41 = Floats8(), c50 = Floats8(), c51 = Floats8()
    var bp = b
    for t in 0..<count {
        let b0 = load8(bp), b1 = load8(bp + 8)
        @inline(__always) func row(_ i: Int, _ lo: inout Floats8, _ hi: inout Floats8) {
            let x = Floats8(repeating: a[i &* lda &+ t])
            lo = fma(x, b0, lo)
            hi = fma(x, b1, hi)
        }
        row(0, &c00, &c01); row(1, &c10, &c11); row(2, &c20, &c21)
        row(3, &c30, &c31); row(4, &c40, &c41); row(5, &c50, &c51)
        bp += ldb
    }
    @inline(__always) func store(_ i: Int, _ lo: Floats8, _ hi: Floats8) {
        store8(lo, c + i &* ldc)
        store8(hi, c + i &* ldc + 8)
    }
    store(0, c00, c01); store(1, c10, c11); store(2, c20, c21)
    store(3, c30, c31); store(4, c40, c41); store(5, c50, c51)
}

#if arch(x86_64)
/// The 16-lane softmax rows, for tests in the test target.
func softmaxNumerators16Entry(_ x: UnsafeMutablePointer<Float>, count: Int) -> Float { softmaxNumerators16(x, count: count) }
func softmaxNumeratorsBF16Entry(_ x: UnsafePointer<Float>, count: Int, paddedCount: Int, out: UnsafeMutablePointer<UInt16>) -> Float {
    softmaxNumeratorsBF16(x, count: count, paddedCount: paddedCount, out: out)
}
#endif
