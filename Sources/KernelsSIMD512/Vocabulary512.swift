#if arch(x86_64)
import _Builtin_intrinsics.intel

// The words of the AVX-512 level (16 lanes), the counterpart of `KernelsSIMD/SIMDVocabulary.swift`: the
// kernels of `KernelsAVX512` are written in these, and these are the only intrinsics they use. A module of its
// own with `@inlinable` words, built for the same CPU as the kernels: debug builds compile file by file and
// inline only another module's inlinable code.

/// Sixteen floats (one zmm register).
public typealias Floats16 = __m512
/// Sixteen int32 sums (one zmm register).
public typealias Ints16 = __m512i

@inlinable @inline(__always) public func load16(_ p: UnsafePointer<Float>) -> Floats16 { _mm512_loadu_ps(p) }
@inlinable @inline(__always) public func store16(_ v: Floats16, _ p: UnsafeMutablePointer<Float>) { _mm512_storeu_ps(p, v) }
@inlinable @inline(__always) public func splat16(_ x: Float) -> Floats16 { _mm512_set1_ps(x) }
@inlinable @inline(__always) public func zero16() -> Floats16 { _mm512_setzero_ps() }
@inlinable @inline(__always) public func mul16(_ a: Floats16, _ b: Floats16) -> Floats16 { _mm512_mul_ps(a, b) }
/// `a·b + c`, fused.
@inlinable @inline(__always) public func fma16(_ a: Floats16, _ b: Floats16, _ c: Floats16) -> Floats16 { _mm512_fmadd_ps(a, b, c) }

/// Sixteen int32 lanes all equal to `x`.
@inlinable @inline(__always) public func splat16(_ x: Int32) -> Ints16 { _mm512_set1_epi32(x) }
/// One 64-byte row of a `.quads` panel block: 16 features × 4 unsigned weights.
@inlinable @inline(__always) public func loadQuads(_ p: UnsafeRawPointer) -> Ints16 { _mm512_loadu_si512(p) }
/// The 4 signed activation bytes at `p`, broadcast to every lane.
@inlinable @inline(__always) public func broadcastQuad(_ p: UnsafeRawPointer, _ offset: Int) -> Ints16 {
    _mm512_set1_epi32(p.loadUnaligned(fromByteOffset: offset, as: Int32.self))
}
/// `acc[f] + Σ_j w[4f + j] · x[j]` (u8 × s8, `vpdpbusd`: 64 multiply-adds).
@inlinable @inline(__always) public func dotQuads(_ acc: Ints16, _ w: Ints16, _ x: Ints16) -> Ints16 { _mm512_dpbusd_epi32(acc, w, x) }
/// `c + float(acc) · scale`: one block's integer sums into an F32 result.
@inlinable @inline(__always) public func fold16(_ acc: Ints16, _ scale: Floats16, _ c: Floats16) -> Floats16 {
    _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, c)
}
/// The larger of each lane pair; a NaN in `b` is returned as is (`vmaxps` returns its second operand when
/// either is NaN, so the NaN must be the second to survive).
@inlinable @inline(__always) public func larger16(_ a: Floats16, _ b: Floats16) -> Floats16 { _mm512_max_ps(a, b) }
/// The largest lane.
@inlinable @inline(__always) public func maximum16(_ v: Floats16) -> Float { _mm512_reduce_max_ps(v) }
/// The sum of the lanes.
@inlinable @inline(__always) public func sum16(_ v: Floats16) -> Float { _mm512_reduce_add_ps(v) }
/// The first `count` (0…16) floats at `p`, the other lanes `fill`; reads nothing past `p + count`.
@inlinable @inline(__always) public func loadPartial16(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> Floats16 {
    let mask = UInt16(truncatingIfNeeded: (1 << count) &- 1)
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask, p)
}

/// `eˣ` for `x ≤ 0` (softmax numerators after the row maximum is subtracted), 16 lanes: the same range
/// reduction and polynomial as the 8-lane `exp` of `KernelsSIMD` (Cephes: x = n·ln2 + r, |r| ≤ ln2/2, a
/// degree-6 polynomial, relative error ≈ 2⁻²³). Below −87.7 (and for −∞) the result is 0: the input is
/// clamped to −88, where n = −127 puts a zero exponent field in 2ⁿ — no compare is needed (the AVX-512
/// compare intrinsics are macros Swift cannot import). A NaN input gives NaN (the clamps keep it).
@inlinable @inline(__always) public func expNonPositive16(_ x: Floats16) -> Floats16 {
    let clamped = _mm512_max_ps(_mm512_set1_ps(-88), _mm512_min_ps(_mm512_set1_ps(0), x))
    let ni = _mm512_cvtps_epi32(_mm512_mul_ps(clamped, _mm512_set1_ps(1.442695040888963)))
    let n = _mm512_cvtepi32_ps(ni)
    var r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375), clamped)
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4), r)
    var p = _mm512_set1_ps(1.9875691500e-4)
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3))
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3))
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2))
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1))
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1))
    let er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1))
    let twoToN = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23))
    return _mm512_mul_ps(er, twoToN)
}

/// Sixteen non-negative finite floats rounded to BF16 as 16 16-bit values (one ymm): to nearest, ties away
/// from zero (`vcvtne2ps2bf16` breaks ties to even: the two differ only when the low 16 bits are exactly
/// 0x8000). Integer arithmetic: the BF16 conversion intrinsics use a type Swift cannot import.
@inlinable @inline(__always) public func bf16Bits16(_ v: Floats16) -> __m256i {
    let rounded = _mm512_add_epi32(_mm512_castps_si512(v), _mm512_set1_epi32(0x8000))
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16))
}
#endif
