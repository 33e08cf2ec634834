import Foundation

/// The precision of attention's two products over many queries.
public enum AttentionPrecision: Sendable {
    /// F32 operands: the F32 weight format (the reference the golden tests hold to ≈ 1e-6).
    case f32
    /// BF16 operands with F32 sums where the CPU multiplies BF16 faster (AVX512_BF16: twice the F32 FMA rate),
    /// F32 elsewhere: the quantized formats, whose weights already carry a larger error.
    case reduced
}

/// Scaled dot-product attention with grouped KV heads, over strided views (no copies).
///
/// - `q`: `queryCount` rows, row stride `ldq`; head `h` occupies columns `h·headDim ..< (h+1)·headDim`.
/// - `k`, `v`: `keyCount` rows, row stride `ldkv`; KV head `g` at columns `g·headDim`. Query head `h`
///   reads KV head `h / (heads / kvHeads)` (spec §8.8: consecutive query heads share a KV head).
/// - `causalOffset`: nil for full (bidirectional) attention; otherwise query `t` sees keys
///   `0 ... causalOffset + t` (the keys before the current chunk plus the chunk's causal triangle).
/// - `out`: `queryCount` rows, row stride `ldo`, same head layout as `q`.
///
/// Many queries use our register-tiled kernels parallel over heads and query blocks (AVX2 builds or
/// AVX-512 CPUs, head sizes that are multiples of 16: `TiledAttention.swift`), else OpenBLAS sgemm per head and block
/// of queries; few queries (decode) use a direct loop parallel over heads, where call overhead would
/// dominate.
public func attention(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int, precision: AttentionPrecision = .f32
) {
    precondition(heads % kvHeads == 0, "heads \(heads) not a multiple of kvHeads \(kvHeads)")
    if queryCount <= 4 {
        attentionDirect(q: q, ldq: ldq, queryCount: queryCount, k: k, v: v, ldkv: ldkv, keyCount: keyCount,
                        heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, causalOffset: causalOffset,
                        out: out, ldo: ldo)
        return
    }
    #if arch(x86_64)
    if bf16TilesRun(precision: precision, headDim: headDim) {
        tiledAttentionBF16(q: q, ldq: ldq, queryCount: queryCount, source: .f32(k: k, v: v), ldkv: ldkv, keyCount: keyCount,
                           heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, causalOffset: causalOffset,
                           out: out, ldo: ldo)
        return
    }
    #endif
    if tiledAttentionSupports(headDim: headDim) {
        tiledAttention(q: q, ldq: ldq, queryCount: queryCount, k: k, v: v, ldkv: ldkv, keyCount: keyCount,
                       heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, causalOffset: causalOffset,
                       out: out, ldo: ldo)
        return
    }
    let group = heads / kvHeads
    let block = min(queryCount, 256)
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * keyCount)
    defer { scores.deallocate() }
    for h in 0..<heads {
        let g = h / group
        var start = 0
        while start < queryCount {
            let rows = min(block, queryCount - start)
            // Keys visible to the last query of the block bound the work for causal attention.
            let visible = causalOffset.map { min(keyCount, $0 + start + rows) } ?? keyCount
            matmulTransposedB(q + start * ldq + h * headDim, rows: rows, inner: headDim, ldx: ldq,
                              k + g * headDim, columns: visible, ldw: ldkv,
                              scores, ldy: visible, alpha: scale)
            // Rows in parallel: BLAS parallelizes the products itself, the softmax is ours.
            Parallel.forRanges(rows, minimumPerThread: 16) { range in
                for r in range {
                    let row = scores + r * visible
                    let limit = causalOffset.map { min(visible, $0 + start + r + 1) } ?? visible
                    for j in limit..<visible { row[j] = -Float.infinity }
                    softmaxInPlace(row, count: visible)
                }
            }
            matmul(scores, rows: rows, inner: visible, ldx: visible,
                   v + g * headDim, columns: headDim, ldb: ldkv,
                   out + start * ldo + h * headDim, ldy: ldo)
            start += rows
        }
    }
}

/// Direct attention for a handful of queries, parallel over heads.
private func attentionDirect(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int
) {
    let group = heads / kvHeads
    #if arch(x86_64)
    if groupedDecodeRuns(headDim: headDim) {
        groupedDecodeAttention(q: q, ldq: ldq, queryCount: queryCount, kv: .f32(k: k, v: v), ldkv: ldkv, keyCount: keyCount,
                               heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, causalOffset: causalOffset,
                               out: out, ldo: ldo)
        return
    }
    #endif
    let work = heads * queryCount
    Parallel.forRanges(work, minimumPerThread: 1) { range in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, keyCount))
        defer { scores.deallocate() }
        for item in range {
            let h = item % heads, t = item / heads
            let g = h / group
            let qv = q + t * ldq + h * headDim
            let visible = causalOffset.map { min(keyCount, $0 + t + 1) } ?? keyCount
            for s in 0..<visible {
                scores[s] = dotProduct(qv, k + s * ldkv + g * headDim, count: headDim) * scale
            }
            softmaxInPlace(scores, count: visible)
            let o = out + t * ldo + h * headDim
            o.update(repeating: 0, count: headDim)
            for s in 0..<visible {
                let p = scores[s]
                let vv = v + s * ldkv + g * headDim
                for i in 0..<headDim { o[i] += p * vv[i] }
            }
        }
    }
}

/// `Σ a[i]·b[i]` with 8-lane vectors and two accumulators. A plain float loop stays scalar (the
/// compiler may not reorder a float sum), which made decode attention a chain of dependent adds:
/// 16 heads × 128 dims × every cached key, per layer and token.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
    var i = 0
    while i + 16 <= count {
        s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        s1 += ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        i += 16
    }
    if i + 8 <= count {
        s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    let v = s0 + s1
    let v4 = v.lowHalf + v.highHalf, v2 = v4.lowHalf + v4.highHalf
    var sum = v2[0] + v2[1]
    while i < count {
        sum += a[i] * b[i]
        i += 1
    }
    return sum
}

/// Naive twin of `attention` in double precision, for tests.
public func naiveAttention(
    q: UnsafePointer<Float>, ldq: Int, queryCount: Int,
    k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int, keyCount: Int,
    heads: Int, kvHeads: Int, headDim: Int, scale: Float, causalOffset: Int?,
    out: UnsafeMutablePointer<Float>, ldo: Int
) {
    let group = heads / kvHeads
    for h in 0..<heads {
        let g = h / group
        for t in 0..<queryCount {
            let visible = causalOffset.map { min(keyCount, $0 + t + 1) } ?? keyCount
            var logits = [Double](repeating: 0, count: visible)
            for s in 0..<visible {
                var dot = 0.0
                for i in 0..<headDim { dot += Double(q[t * ldq + h * headDim + i]) * Double(k[s * ldkv + g * headDim + i]) }
                logits[s] = dot * Double(scale)
            }
            let m = logits.max() ?? 0
            let e = logits.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for i in 0..<headDim {
                var acc = 0.0
                for s in 0..<visible { acc += e[s] / z * Double(v[s * ldkv + g * headDim + i]) }
                out[t * ldo + h * headDim + i] = Float(acc)
            }
        }
    }
}
