#if arch(x86_64)
import _Builtin_intrinsics.intel
import KernelsSIMD512

// The instruction limits `postlens bench` compares the AVX-512 kernels with: loops of the instructions
// those kernels are made of, with enough independent accumulators to reach the issue rate.

/// `iterations` × 12 `vpdpbusd` zmm (64 int8 multiply-adds each); returns a value that depends on all of them.
public func vnniPeakLoop(_ iterations: Int, seed: Int32) -> Int32 {
    let w = _mm512_set1_epi32(seed | 0x0101_0101), x = _mm512_set1_epi32(seed &+ 3)
    var s0 = x, s1 = x, s2 = x, s3 = x, s4 = x, s5 = x, s6 = x, s7 = x, s8 = x, s9 = x, s10 = x, s11 = x
    for _ in 0..<iterations {
        s0 = dotQuads(s0, w, x); s1 = dotQuads(s1, w, x); s2 = dotQuads(s2, w, x)
        s3 = dotQuads(s3, w, x); s4 = dotQuads(s4, w, x); s5 = dotQuads(s5, w, x)
        s6 = dotQuads(s6, w, x); s7 = dotQuads(s7, w, x); s8 = dotQuads(s8, w, x)
        s9 = dotQuads(s9, w, x); s10 = dotQuads(s10, w, x); s11 = dotQuads(s11, w, x)
    }
    let t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)),
                             _mm512_add_epi32(_mm512_add_epi32(s4, s5), _mm512_add_epi32(s6, s7)))
    let u = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(s8, s9), _mm512_add_epi32(s10, s11)))
    return unsafeBitCast(u, to: SIMD16<Int32>.self).wrappedSum()
}

/// `iterations` × 12 `vfmadd` zmm (16 fp32 multiply-adds each).
public func fmaPeakLoop512(_ iterations: Int, seed: Float) -> Float {
    let a = _mm512_set1_ps(seed), b = _mm512_set1_ps(0.999)
    var s0 = a, s1 = a, s2 = a, s3 = a, s4 = a, s5 = a, s6 = a, s7 = a, s8 = a, s9 = a, s10 = a, s11 = a
    for _ in 0..<iterations {
        s0 = fma16(s0, b, a); s1 = fma16(s1, b, a); s2 = fma16(s2, b, a)
        s3 = fma16(s3, b, a); s4 = fma16(s4, b, a); s5 = fma16(s5, b, a)
        s6 = fma16(s6, b, a); s7 = fma16(s7, b, a); s8 = fma16(s8, b, a)
        s9 = fma16(s9, b, a); s10 = fma16(s10, b, a); s11 = fma16(s11, b, a)
    }
    let t = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                          _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)))
    let u = _mm512_add_ps(t, _mm512_add_ps(_mm512_add_ps(s8, s9), _mm512_add_ps(s10, s11)))
    return u.sum()
}
#endif
