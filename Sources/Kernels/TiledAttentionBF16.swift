import Foundation
#if arch(x86_64)
import CKernels
import KernelsAVX512

// Many-query attention with BF16 products (`vdpbf16ps`: twice the multiply-adds of an F32 FMA per
// instruction) for the quantized formats on CPUs with AVX512_BF16: the vision encoder's attention grows with
// the square of the patches (≈ 100 GFLOP at 1,024 patches, 1.65 TFLOP at 4,096) and at OCR sizes is most of
// the vision time. Same plan as `tiledAttention` (parallel over head × block of 48 queries, packed keys and
// values, F32 softmax on each row block, each output row divided by its sum); the operands of both products
// are rounded to BF16 (8 significant bits) and every sum is F32, as in PyTorch's bf16 attention.
//
// Layouts (each uint32 holds two BF16 values, the low one first):
// - keys, per KV head and block of 16 keys: `[pair t of dims][16 keys]` = (k[j][2t], k[j][2t+1]);
// - values, per KV head and group of 16 dims: `[pair u of keys][16 dims]` = (v[2u][d], v[2u+1][d]);
// - queries (scaled) and probabilities: rows of pairs along the summed dimension, broadcast by the kernel.

/// Whether many-query attention runs on the BF16 tiles: reduced precision asked for, a head size they handle, and
/// a CPU with AVX512_BF16 at the avx512 level or above.
func bf16TilesRun(precision: AttentionPrecision, headDim: Int) -> Bool {
    precision == .reduced && tiledAttentionSupports(headDim: headDim) && KernelDispatch.level >= .avx512
        && CPUFeatures.host.avx512BF16
}

/// Same contract as `attention` for `headDim % 16 == 0`, with BF16 products. Keys and values may be F32 (rounded
/// while packed) or BF16 already (a BF16 KV cache: packed as they are).
func tiledAttentionBF16(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int,
    source: KVRows, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim hd: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int
) {
    let group = heads / kvHeads, halfDim = hd / 2
    let paddedKeys = (keyCount + 15) / 16 * 16, keyBlocks = paddedKeys / 16, dimGroups = hd / 16
    let perHead = halfDim * paddedKeys  // pairs per KV head, for keys and for values
    let keyBuffer = TileBuffers.take(kvHeads * perHead), valueBuffer = TileBuffers.take(kvHeads * perHead)
    defer {
        TileBuffers.give(keyBuffer)
        TileBuffers.give(valueBuffer)
    }
    let kp = UnsafeMutableRawPointer(keyBuffer.pointer).bindMemory(to: UInt32.self, capacity: kvHeads * perHead)
    let vp = UnsafeMutableRawPointer(valueBuffer.pointer).bindMemory(to: UInt32.self, capacity: kvHeads * perHead)
    Parallel.forRanges(kvHeads * keyBlocks, minimumPerThread: 4) { range in
        // Each F32 key row and value row is rounded 32 values at a time into scratch (BF16 rows are read where
        // they are), then its BF16 values are moved into the packed order (a 32-bit pair or a 16-bit value each).
        let scratch0 = UnsafeMutablePointer<UInt16>.allocate(capacity: hd), scratch1 = UnsafeMutablePointer<UInt16>.allocate(capacity: hd)
        let zeros = UnsafeMutablePointer<UInt16>.allocate(capacity: hd)
        zeros.initialize(repeating: 0, count: hd)
        defer { scratch0.deallocate(); scratch1.deallocate(); zeros.deallocate() }
        /// Row `j`'s `hd` BF16 values of KV head `g` (zeros past the last key).
        func bf16Row(keys: Bool, _ j: Int, _ g: Int, into scratch: UnsafeMutablePointer<UInt16>) -> UnsafePointer<UInt16> {
            guard j < keyCount else { return UnsafePointer(zeros) }
            switch source {
            case .f32(let k, let v):
                postlens_bf16_convert((keys ? k : v) + j * ldkv + g * hd, scratch, Int64(hd))
                return UnsafePointer(scratch)
            case .bf16(let k, let v):
                return (keys ? k : v) + j * ldkv + g * hd
            }
        }
        for item in range {
            let g = item / keyBlocks, jb = item % keyBlocks
            let keys = kp + g * perHead + jb * halfDim * 16
            for jj in 0..<16 {
                let row = UnsafeRawPointer(bf16Row(keys: true, jb * 16 + jj, g, into: scratch0))
                for t in 0..<halfDim { keys[t * 16 + jj] = row.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self) }
            }
            // Values: this block's 8 key pairs for every group of 16 dims.
            for u in (jb * 8)..<(jb * 8 + 8) {
                let row0 = bf16Row(keys: false, 2 * u, g, into: scratch0), row1 = bf16Row(keys: false, 2 * u + 1, g, into: scratch1)
                for dg in 0..<dimGroups {
                    let dst = vp + g * perHead + (dg * (paddedKeys / 2) + u) * 16
                    for dd in 0..<16 { dst[dd] = UInt32(row0[dg * 16 + dd]) | UInt32(row1[dg * 16 + dd]) << 16 }
                }
            }
        }
    }
    let blocksPerHead = (queryCount + attentionQueryBlock - 1) / attentionQueryBlock
    // (head, query block) items handed out one at a time: a thread slowed by the machine takes fewer.
    let queue = WorkQueue(count: heads * blocksPerHead, grain: 1)
    Parallel.forEachThread(limit: heads * blocksPerHead) {
        let queries = UnsafeMutablePointer<UInt32>.allocate(capacity: attentionQueryBlock * halfDim)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock * paddedKeys)
        let probabilities = UnsafeMutablePointer<UInt32>.allocate(capacity: attentionQueryBlock * paddedKeys / 2)
        let output = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock * hd)
        let inverseSums = UnsafeMutablePointer<Float>.allocate(capacity: attentionQueryBlock)
        defer {
            queries.deallocate(); scores.deallocate(); probabilities.deallocate(); output.deallocate(); inverseSums.deallocate()
        }
        while let range = queue.claim() { for item in range {
            let h = item / blocksPerHead, start = (item % blocksPerHead) * attentionQueryBlock
            let g = h / group
            let rows = min(attentionQueryBlock, queryCount - start)
            let paddedRows = (rows + 11) / 12 * 12
            let visible = causalOffset.map { min(keyCount, $0 + start + rows) } ?? keyCount
            let visiblePadded = (visible + 15) / 16 * 16
            for r in 0..<paddedRows {
                let dst = queries + r * halfDim
                if r < rows {
                    // Scaled into the output row (free until the end), then rounded 32 values at a time.
                    let src = q + (start + r) * ldq + h * hd, scaled = output + r * hd
                    for d in 0..<hd { scaled[d] = src[d] * scale }
                    postlens_bf16_convert(scaled, UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt16.self), Int64(hd))
                } else {
                    dst.update(repeating: 0, count: halfDim)
                }
            }
            let keys = kp + g * perHead, values = vp + g * perHead
            var r0 = 0
            while r0 < paddedRows {
                var j0 = 0
                while j0 < visiblePadded {
                    let groups: Int32 = j0 + 32 <= visiblePadded ? 2 : 1
                    postlens_bf16_tile(12, groups, queries + r0 * halfDim, Int64(halfDim), keys + (j0 / 16) * halfDim * 16,
                                       keys + (j0 / 16 + Int(groups) - 1) * halfDim * 16, Int64(halfDim),
                                       scores + r0 * paddedKeys + j0, Int64(paddedKeys))
                    j0 += 16 * Int(groups)
                }
                r0 += 12
            }
            for r in 0..<paddedRows {
                let row = scores + r * paddedKeys, pairs = probabilities + r * (paddedKeys / 2)
                if r < rows {
                    let limit = causalOffset.map { min(visible, $0 + start + r + 1) } ?? visible
                    for j in limit..<visible { row[j] = -Float.infinity }
                    // Numerators rounded to BF16 pairs in one 16-lane pass (zeros up to the padded width).
                    inverseSums[r] = 1 / softmaxNumeratorsBF16(row, count: visible, paddedCount: visiblePadded,
                                                               out: UnsafeMutableRawPointer(pairs).assumingMemoryBound(to: UInt16.self))
                } else {
                    UnsafeMutableRawPointer(pairs).assumingMemoryBound(to: UInt16.self).update(repeating: 0, count: visiblePadded)
                }
            }
            r0 = 0
            while r0 < paddedRows {
                var d0 = 0
                while d0 < hd {
                    let groups: Int32 = d0 + 32 <= hd ? 2 : 1
                    postlens_bf16_tile(12, groups, probabilities + r0 * (paddedKeys / 2), Int64(paddedKeys / 2),
                                       values + (d0 / 16) * (paddedKeys / 2) * 16,
                                       values + (d0 / 16 + Int(groups) - 1) * (paddedKeys / 2) * 16,
                                       Int64(visiblePadded / 2), output + r0 * hd + d0, Int64(hd))
                    d0 += 16 * Int(groups)
                }
                r0 += 12
            }
            for r in 0..<rows {
                let dst = out + (start + r) * ldo + h * hd, src = output + r * hd, inverse = inverseSums[r]
                for d in 0..<hd { dst[d] = src[d] * inverse }
            }
        } }
    }
}
#endif
