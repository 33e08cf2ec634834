#if arch(x86_64)
import _Builtin_intrinsics.intel

// The words of the AVX-512 level (16 lanes), the counterpart of `KernelsSIMD/SIMDVocabulary.swift`: the
// kernels of this module are written in these, and these are the only intrinsics they use.

/// Sixteen floats (one zmm register).
typealias Floats16 = __m512
/// Sixteen int32 sums (one zmm register).
typealias Ints16 = __m512i

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> Floats16 { _mm512_loadu_ps(p) }
@inline(__always) func store16(_ v: Floats16, _ p: UnsafeMutablePointer<Float>) { _mm512_storeu_ps(p, v) }
@inline(__always) func splat16(_ x: Float) -> Floats16 { _mm512_set1_ps(x) }
@inline(__always) func zero16() -> Floats16 { _mm512_setzero_ps() }
@inline(__always) func mul16(_ a: Floats16, _ b: Floats16) -> Floats16 { _mm512_mul_ps(a, b) }
/// `a·b + c`, fused.
@inline(__always) func fma16(_ a: Floats16, _ b: Floats16, _ c: Floats16) -> Floats16 { _mm512_fmadd_ps(a, b, c) }

/// Sixteen int32 lanes all equal to `x`.
@inline(__always) func splat16(_ x: Int32) -> Ints16 { _mm512_set1_epi32(x) }
/// One 64-byte row of a `.quads` panel block: 16 features × 4 unsigned weights.
@inline(__always) func loadQuads(_ p: UnsafeRawPointer) -> Ints16 { _mm512_loadu_si512(p) }
/// The 4 signed activation bytes at `p`, broadcast to every lane.
@inline(__always) func broadcastQuad(_ p: UnsafeRawPointer, _ offset: Int) -> Ints16 {
    _mm512_set1_epi32(p.loadUnaligned(fromByteOffset: offset, as: Int32.self))
}
/// `acc[f] + Σ_j w[4f + j] · x[j]` (u8 × s8, `vpdpbusd`: 64 multiply-adds).
@inline(__always) func dotQuads(_ acc: Ints16, _ w: Ints16, _ x: Ints16) -> Ints16 { _mm512_dpbusd_epi32(acc, w, x) }
/// `c + float(acc) · scale`: one block's integer sums into an F32 result.
@inline(__always) func fold16(_ acc: Ints16, _ scale: Floats16, _ c: Floats16) -> Floats16 {
    _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, c)
}
#endif
