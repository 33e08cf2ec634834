import Foundation
import Tensors
#if arch(x86_64)
import CKernels
import KernelsAVX512
#endif

/// The element type of a KV cache.
public enum KVElement: String, Sendable {
    /// F32: the F32 weight format (the reference), and every CPU without AVX512_BF16.
    case f32
    /// BF16 (8 significant bits, as PyTorch's bf16 caches): quantized formats on CPUs with AVX512_BF16, where
    /// decode attention widens BF16 rows in registers and the many-query kernels multiply BF16 already. Half the
    /// memory per cached token, and half the bytes decode attention reads per step.
    case bf16

    public var byteCount: Int { self == .f32 ? 4 : 2 }

    /// The cache element for a model whose weights are quantized (or not) on this CPU, at the active level.
    public static func preferred(quantized: Bool) -> KVElement {
        #if arch(x86_64)
        if quantized, KernelDispatch.level >= .avx512, CPUFeatures.host.avx512BF16 { return .bf16 }
        #endif
        return .f32
    }
}

/// Keys and values as attention reads them: rows of `ldkv` elements, KV head `g` at element `g·headDim`.
public enum KVRows {
    case f32(k: UnsafePointer<Float>, v: UnsafePointer<Float>)
    case bf16(k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>)
}

/// `out[i] = BF16(x[i])`, rounded to nearest even (`vcvtne2ps2bf16` where the CPU has it).
public func roundToBF16(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
    #if arch(x86_64)
    if CPUFeatures.host.avx512BF16 {
        postlens_bf16_convert(x, out, Int64(count))
        return
    }
    #endif
    for i in 0..<count {
        let bits = x[i].bitPattern
        out[i] = x[i].isNaN ? UInt16(bits >> 16) | 0x40 : UInt16((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }
}

/// `out[i] = Float(x[i])` for BF16 values (exact).
public func widenBF16(_ x: UnsafePointer<UInt16>, count: Int, into out: UnsafeMutablePointer<Float>) {
    for i in 0..<count { out[i] = Float(bitPattern: UInt32(x[i]) << 16) }
}

/// `attention` (see Attention.swift) over keys and values in either element type. BF16 rows go to the kernels
/// that read BF16 (decode at avx512, the BF16 tiles for many queries); anything else widens the visible rows to
/// F32 first.
public func attention(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int, kv: KVRows, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int, precision: AttentionPrecision = .f32
) {
    switch kv {
    case .f32(let k, let v):
        attention(q: q, ldq: ldq, queryCount: queryCount, k: k, v: v, ldkv: ldkv, keyCount: keyCount, heads: heads,
                  kvHeads: kvHeads, headDim: headDim, scale: scale, causalOffset: causalOffset, out: out, ldo: ldo,
                  precision: precision)
    case .bf16(let k, let v):
        #if arch(x86_64)
        if queryCount <= 4, groupedDecodeRuns(headDim: headDim) {
            groupedDecodeAttention(q: q, ldq: ldq, queryCount: queryCount, kv: kv, ldkv: ldkv, keyCount: keyCount,
                                   heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                                   causalOffset: causalOffset, out: out, ldo: ldo)
            return
        }
        if queryCount > 4, bf16TilesRun(precision: precision, headDim: headDim) {
            tiledAttentionBF16(q: q, ldq: ldq, queryCount: queryCount, source: .bf16(k: k, v: v), ldkv: ldkv,
                               keyCount: keyCount, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                               causalOffset: causalOffset, out: out, ldo: ldo)
            return
        }
        #endif
        // Not pooled (`TileBuffers` keeps what it lends): a long context's rows would stay allocated.
        let n = keyCount * ldkv
        let wide = LargeAllocation.allocate(byteCount: 2 * max(1, n) * 4).bindMemory(to: Float.self, capacity: 2 * max(1, n))
        defer { wide.deallocate() }
        widenBF16(k, count: n, into: wide)
        widenBF16(v, count: n, into: wide + n)
        attention(q: q, ldq: ldq, queryCount: queryCount, k: wide, v: wide + n, ldkv: ldkv,
                  keyCount: keyCount, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                  causalOffset: causalOffset, out: out, ldo: ldo, precision: precision)
    }
}

#if arch(x86_64)
/// Whether `groupedDecodeAttention` serves this head size at the active level (avx512 and up; 16…128 in steps of 16).
func groupedDecodeRuns(headDim: Int) -> Bool {
    KernelDispatch.level >= .avx512 && headDim % 16 == 0 && headDim <= 128
}

/// Decode at avx512 (≤ 4 queries, head sizes 16…128 in steps of 16): one pass over a KV head's cache for each
/// pair of the query heads that share it (`KernelsAVX512/DecodeAttention.swift`), parallel over
/// (query, KV head, pair).
func groupedDecodeAttention(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int, kv: KVRows, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int
) {
    let group = heads / kvHeads, pairs = (group + 1) / 2
    Parallel.forRanges(queryCount * kvHeads * pairs, minimumPerThread: 1) { range in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: 2 * max(1, keyCount))
        defer { scores.deallocate() }
        for item in range {
            let t = item / (kvHeads * pairs), g = (item / pairs) % kvHeads, h0 = g * group + (item % pairs) * 2
            let visible = causalOffset.map { min(keyCount, $0 + t + 1) } ?? keyCount
            let count = min(2, g * group + group - h0)
            let qh = q + t * ldq + h0 * headDim, oh = out + t * ldo + h0 * headDim
            switch kv {
            case .f32(let k, let v):
                groupAttention16(heads: count, q: qh, k: k + g * headDim, v: v + g * headDim, ldkv: ldkv, count: visible,
                                 headDim: headDim, scale: scale, scores: scores, out: oh)
            case .bf16(let k, let v):
                groupAttention16BF16(heads: count, q: qh, k: k + g * headDim, v: v + g * headDim, ldkv: ldkv,
                                     count: visible, headDim: headDim, scale: scale, scores: scores, out: oh)
            }
        }
    }
}
#endif
