#if arch(x86_64)
import _Builtin_intrinsics.intel

// The FMA microkernel of many-query attention (both products: queries·keysᵀ and probabilities·values)
// on 16-lane zmm vectors; the driver and the packed key/value layout are `Kernels/TiledAttention.swift`.

/// `c[i·ldc + j] = Σ_t a[i·lda + t] · b_g[t·16 + j mod 16]` for `rows` (1…12) rows `i` and `groups`
/// (1 or 2) groups of 16 columns `j`, where group `g` reads `b0` or `b1` (each `count` × 16, row stride
/// 16). Scores: `a` = scaled queries, `b_g` = a block of 16 packed keys. Output: `a` = probabilities,
/// `b_g` = 16 packed value dims. 24 accumulators, two B rows and one broadcast of the 32 registers.
public func attentionTile(rows: Int, groups: Int, a: UnsafePointer<Float>, lda: Int,
                          b0: UnsafePointer<Float>, b1: UnsafePointer<Float>, count: Int,
                          c: UnsafeMutablePointer<Float>, ldc: Int) {
    if groups > 1 {
        switch rows {
        case 12: tile(12, 2, a, lda, b0, b1, count, c, ldc)
        case 6: tile(6, 2, a, lda, b0, b1, count, c, ldc)
        default: for i in 0..<rows { tile(1, 2, a + i * lda, lda, b0, b1, count, c + i * ldc, ldc) }
        }
    } else {
        switch rows {
        case 12: tile(12, 1, a, lda, b0, b1, count, c, ldc)
        case 6: tile(6, 1, a, lda, b0, b1, count, c, ldc)
        default: for i in 0..<rows { tile(1, 1, a + i * lda, lda, b0, b1, count, c + i * ldc, ldc) }
        }
    }
}

@inline(__always)
private func tile(_ R: Int, _ G: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                  _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ count: Int,
                  _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    var c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps()
    var c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps()
    var c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps()
    var c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps()
    var c80 = _mm512_setzero_ps(), c81 = _mm512_setzero_ps(), c90 = _mm512_setzero_ps(), c91 = _mm512_setzero_ps()
    var ca0 = _mm512_setzero_ps(), ca1 = _mm512_setzero_ps(), cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps()
    var p0 = b0, p1 = b1
    for t in 0..<count {
        let v0 = _mm512_loadu_ps(p0), v1 = G > 1 ? _mm512_loadu_ps(p1) : v0
        @inline(__always) func row(_ i: Int, _ lo: inout __m512, _ hi: inout __m512) {
            let x = _mm512_set1_ps(a[i &* lda &+ t])
            lo = _mm512_fmadd_ps(x, v0, lo)
            if G > 1 { hi = _mm512_fmadd_ps(x, v1, hi) }
        }
        row(0, &c00, &c01)
        if R > 1 { row(1, &c10, &c11) }
        if R > 2 { row(2, &c20, &c21) }
        if R > 3 { row(3, &c30, &c31) }
        if R > 4 { row(4, &c40, &c41) }
        if R > 5 { row(5, &c50, &c51) }
        if R > 6 { row(6, &c60, &c61) }
        if R > 7 { row(7, &c70, &c71) }
        if R > 8 { row(8, &c80, &c81) }
        if R > 9 { row(9, &c90, &c91) }
        if R > 10 { row(10, &ca0, &ca1) }
        if R > 11 { row(11, &cb0, &cb1) }
        p0 += 16
        p1 += 16
    }
    @inline(__always) func store(_ i: Int, _ lo: __m512, _ hi: __m512) {
        _mm512_storeu_ps(c + i &* ldc, lo)
        if G > 1 { _mm512_storeu_ps(c + i &* ldc + 16, hi) }
    }
    store(0, c00, c01)
    if R > 1 { store(1, c10, c11) }
    if R > 2 { store(2, c20, c21) }
    if R > 3 { store(3, c30, c31) }
    if R > 4 { store(4, c40, c41) }
    if R > 5 { store(5, c50, c51) }
    if R > 6 { store(6, c60, c61) }
    if R > 7 { store(7, c70, c71) }
    if R > 8 { store(8, c80, c81) }
    if R > 9 { store(9, c90, c91) }
    if R > 10 { store(10, ca0, ca1) }
    if R > 11 { store(11, cb0, cb1) }
}
#endif
