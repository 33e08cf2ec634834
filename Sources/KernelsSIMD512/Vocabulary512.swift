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
#endif
