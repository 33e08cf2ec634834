#if arch(x86_64)
import _Builtin_intrinsics.intel
import KernelsSIMD512

// Decode attention on 16 lanes: one query row per head over the cached keys. Bound by reading the KV cache
// (28 layers × 8 KV heads × 128 dims × 2 × 4 bytes = 229 KB per cached token for the 2B), so the query heads
// that share a KV head (2 in the 2B, 4 in the 4B and 8B) are served by one pass over its keys and values
// instead of one pass each, and the outputs stay in registers across all keys. The driver (threads, causal
// limits, GQA grouping) is `attentionDirect` in `Kernels/Attention.swift`.

/// How a kernel reads 16 consecutive elements of a key or value row as floats.
private protocol RowElements {
    associatedtype Element
    static func load(_ p: UnsafePointer<Element>) -> Floats16
}

/// F32 rows.
private enum F32Elements: RowElements {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Floats16 { load16(p) }
}

/// BF16 rows (a BF16 KV cache), widened exactly in registers: the 16-bit value is the top half of the F32.
private enum BF16Elements: RowElements {
    @inline(__always) static func load(_ p: UnsafePointer<UInt16>) -> Floats16 {
        let halves = _mm256_loadu_si256(UnsafeRawPointer(p).assumingMemoryBound(to: __m256i.self))
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16))
    }
}

/// For `heads` (1 or 2) query heads that share one KV head: `out_h = softmax(scale · q_h·Kᵀ) · V` over `count`
/// keys. `q_h` at `q + h·headDim`, key/value `s` at `k + s·ldkv` / `v + s·ldkv`, `out_h` at `out + h·headDim`;
/// `headDim` a multiple of 16 up to 128; `scores` scratch for `heads × count` floats.
public func groupAttention16(heads: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             ldkv: Int, count: Int, headDim: Int, scale: Float,
                             scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
    groupAttention(F32Elements.self, heads, q, k, v, ldkv, count, headDim, scale, scores, out)
}

/// `groupAttention16` over BF16 keys and values (a BF16 KV cache).
public func groupAttention16BF16(heads: Int, q: UnsafePointer<Float>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>,
                                 ldkv: Int, count: Int, headDim: Int, scale: Float,
                                 scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
    groupAttention(BF16Elements.self, heads, q, k, v, ldkv, count, headDim, scale, scores, out)
}

@inline(__always)
private func groupAttention<E: RowElements>(_ e: E.Type, _ heads: Int, _ q: UnsafePointer<Float>, _ k: UnsafePointer<E.Element>,
                                            _ v: UnsafePointer<E.Element>, _ ldkv: Int, _ count: Int, _ headDim: Int,
                                            _ scale: Float, _ scores: UnsafeMutablePointer<Float>,
                                            _ out: UnsafeMutablePointer<Float>) {
    switch (heads, headDim / 16) {
    case (1, 8): group(e, 1, 8, q, k, v, ldkv, count, scale, scores, out)
    case (2, 8): group(e, 2, 8, q, k, v, ldkv, count, scale, scores, out)
    case (1, 4): group(e, 1, 4, q, k, v, ldkv, count, scale, scores, out)
    case (2, 4): group(e, 2, 4, q, k, v, ldkv, count, scale, scores, out)
    default:
        for h in 0..<heads { groupAnyWidth(e, q + h * headDim, k, v, ldkv, count, headDim / 16, scale, scores, out + h * headDim) }
    }
}

/// `H` heads × `C` chunks of 16 dims (constants at every call site, so unused registers compile away):
/// the queries in 2·C ≤ 16 registers, then the outputs in 2·C ≤ 16 registers.
@inline(__always)
private func group<E: RowElements>(_ e: E.Type, _ H: Int, _ C: Int, _ q: UnsafePointer<Float>, _ k: UnsafePointer<E.Element>,
                                   _ v: UnsafePointer<E.Element>, _ ldkv: Int, _ count: Int, _ scale: Float,
                                   _ scores: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
    let hd = 16 &* C
    @inline(__always) func query(_ h: Int, _ c: Int) -> Floats16 {
        h < H && c < C ? mul16(load16(q + (h &* hd &+ 16 &* c)), splat16(scale)) : zero16()
    }
    let a0 = query(0, 0), a1 = query(0, 1), a2 = query(0, 2), a3 = query(0, 3)
    let a4 = query(0, 4), a5 = query(0, 5), a6 = query(0, 6), a7 = query(0, 7)
    let b0 = query(1, 0), b1 = query(1, 1), b2 = query(1, 2), b3 = query(1, 3)
    let b4 = query(1, 4), b5 = query(1, 5), b6 = query(1, 6), b7 = query(1, 7)
    let second = scores + count
    for s in 0..<count {
        let row = k + s &* ldkv
        // Two partial sums per head (even and odd chunks) halve the chain of dependent FMAs.
        let k0 = E.load(row), k1 = E.load(row + 16)
        var e0 = mul16(a0, k0), o0 = mul16(a1, k1)
        var e1 = H > 1 ? mul16(b0, k0) : zero16(), o1 = H > 1 ? mul16(b1, k1) : zero16()
        @inline(__always) func chunkPair(_ c: Int, _ x0: Floats16, _ x1: Floats16, _ y0: Floats16, _ y1: Floats16) {
            guard c + 1 < C else { return }
            let kc = E.load(row + 16 &* c), kd = E.load(row + 16 &* (c &+ 1))
            e0 = fma16(x0, kc, e0)
            o0 = fma16(x1, kd, o0)
            if H > 1 {
                e1 = fma16(y0, kc, e1)
                o1 = fma16(y1, kd, o1)
            }
        }
        chunkPair(2, a2, a3, b2, b3)
        chunkPair(4, a4, a5, b4, b5)
        chunkPair(6, a6, a7, b6, b7)
        scores[s] = sum16(_mm512_add_ps(e0, o0))
        if H > 1 { second[s] = sum16(_mm512_add_ps(e1, o1)) }
    }
    let inverse0 = 1 / softmaxNumerators16(scores, count: count)
    let inverse1 = H > 1 ? 1 / softmaxNumerators16(second, count: count) : 0
    var c0 = zero16(), c1 = zero16(), c2 = zero16(), c3 = zero16(), c4 = zero16(), c5 = zero16(), c6 = zero16(), c7 = zero16()
    var d0 = zero16(), d1 = zero16(), d2 = zero16(), d3 = zero16(), d4 = zero16(), d5 = zero16(), d6 = zero16(), d7 = zero16()
    for s in 0..<count {
        let row = v + s &* ldkv
        let p = splat16(scores[s]), r = H > 1 ? splat16(second[s]) : zero16()
        @inline(__always) func chunk(_ c: Int, _ x: inout Floats16, _ y: inout Floats16) {
            guard c < C else { return }
            let value = E.load(row + 16 &* c)
            x = fma16(p, value, x)
            if H > 1 { y = fma16(r, value, y) }
        }
        chunk(0, &c0, &d0); chunk(1, &c1, &d1); chunk(2, &c2, &d2); chunk(3, &c3, &d3)
        chunk(4, &c4, &d4); chunk(5, &c5, &d5); chunk(6, &c6, &d6); chunk(7, &c7, &d7)
    }
    @inline(__always) func store(_ h: Int, _ c: Int, _ x: Floats16) {
        guard h < H && c < C else { return }
        store16(mul16(x, splat16(h == 0 ? inverse0 : inverse1)), out + (h &* hd &+ 16 &* c))
    }
    store(0, 0, c0); store(0, 1, c1); store(0, 2, c2); store(0, 3, c3); store(0, 4, c4); store(0, 5, c5); store(0, 6, c6); store(0, 7, c7)
    store(1, 0, d0); store(1, 1, d1); store(1, 2, d2); store(1, 3, d3); store(1, 4, d4); store(1, 5, d5); store(1, 6, d6); store(1, 7, d7)
}

/// Any multiple of 16 dims, one head: the output accumulates in memory (head sizes outside the family).
private func groupAnyWidth<E: RowElements>(_ e: E.Type, _ q: UnsafePointer<Float>, _ k: UnsafePointer<E.Element>,
                                            _ v: UnsafePointer<E.Element>, _ ldkv: Int, _ count: Int, _ chunks: Int,
                                            _ scale: Float, _ scores: UnsafeMutablePointer<Float>,
                                            _ out: UnsafeMutablePointer<Float>) {
    for s in 0..<count {
        var acc = zero16()
        for c in 0..<chunks { acc = fma16(load16(q + 16 &* c), E.load(k + (s &* ldkv &+ 16 &* c)), acc) }
        scores[s] = sum16(acc) * scale
    }
    let inverse = splat16(1 / softmaxNumerators16(scores, count: count))
    for c in 0..<chunks {
        var acc = zero16()
        for s in 0..<count { acc = fma16(splat16(scores[s]), E.load(v + (s &* ldkv &+ 16 &* c)), acc) }
        store16(mul16(acc, inverse), out + 16 &* c)
    }
}
#endif
