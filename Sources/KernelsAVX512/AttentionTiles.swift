#if arch(x86_64)
import _Builtin_intrinsics.intel
import KernelsSIMD512

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
    var c00 = zero16(), c01 = zero16(), c10 = zero16(), c11 = zero16()
    var c20 = zero16(), c21 = zero16(), c30 = zero16(), c31 = zero16()
    var c40 = zero16(), c41 = zero16(), c50 = zero16(), c51 = zero16()
    var c60 = zero16(), c61 = zero16(), c70 = zero16(), c71 = zero16()
    var c80 = zero16(), c81 = zero16(), c90 = zero16(), c91 = zero16()
    var ca0 = zero16(), ca1 = zero16(), cb0 = zero16(), cb1 = zero16()
    var p0 = b0, p1 = b1
    for t in 0..<count {
        let v0 = load16(p0), v1 = G > 1 ? load16(p1) : v0
        @inline(__always) func row(_ i: Int, _ lo: inout Floats16, _ hi: inout Floats16) {
            let x = splat16(a[i &* lda &+ t])
            lo = fma16(x, v0, lo)
            if G > 1 { hi = fma16(x, v1, hi) }
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
    @inline(__always) func store(_ i: Int, _ lo: Floats16, _ hi: Floats16) {
        store16(lo, c + i &* ldc)
        if G > 1 { store16(hi, c + i &* ldc + 16) }
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
