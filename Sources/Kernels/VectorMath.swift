import Foundation
#if POSTLENS_AVX2
import _Builtin_intrinsics.intel

// `exp` for 8 floats at once. libm's `expf` is a scalar call per value; the vision encoder's softmax
// alone evaluates ≈ 400 M of them for one 512×512 image (16 heads × 1,024² scores × 24 blocks), which
// took longer than all of its weight products. This is the classic Cephes `expf` scheme: split
// `x = n·ln2 + r` with |r| ≤ ln2/2 (ln2 in two parts so `r` is exact), a degree-6 polynomial for
// `e^r`, and `2^n` built in the exponent bits. Measured error ≤ 2 ulp over the float range
// (`Tests/KernelsTests/FloatKernelTests.swift` checks it against `exp` in double precision).

/// e^x for 8 lanes. Inputs below −87.3 give 0 (including −∞, the attention mask); above 88.37 give +∞
/// (so that 2^n stays a normal float; e^88.37 ≈ 2.4e38, the callers never get near it: softmax takes
/// x − max ≤ 0, SiLU and GELU saturate long before).
@inline(__always)
func exp8(_ x: __m256) -> __m256 {
    let hi = _mm256_set1_ps(88.37626), lo = _mm256_set1_ps(-87.33654)
    let clamped = _mm256_max_ps(_mm256_min_ps(x, hi), lo)
    // Round to nearest (the default MXCSR mode) through int32 and back.
    let ni = _mm256_cvtps_epi32(_mm256_mul_ps(clamped, _mm256_set1_ps(1.442695040888963)))
    let n = _mm256_cvtepi32_ps(ni)
    var r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375), clamped)
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4), r)
    var p = _mm256_set1_ps(1.9875691500e-4)
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3))
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3))
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2))
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1))
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1))
    let r2 = _mm256_mul_ps(r, r)
    let er = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1))
    // 2^n: n + 127 in the exponent field (n ∈ [−126, 127]).
    let bits = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23)
    let result = _mm256_mul_ps(er, _mm256_castsi256_ps(bits))
    // Below the range exactly 0, above it +∞, NaN stays NaN (`__m256` is `SIMD8<Float>`: Swift's
    // lane comparisons compile to vcmpps + vblendvps).
    return result.replacing(with: 0, where: x .< lo).replacing(with: .infinity, where: x .> hi)
        .replacing(with: .nan, where: x .!= x)
}
#endif

/// `out[i] = e^x[i]` for `count` values (the vector path's accuracy, tests compare it with libm).
public func vectorExp(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    #if POSTLENS_AVX2
    while i + 8 <= count {
        _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)))
        i += 8
    }
    #endif
    while i < count {
        out[i] = expf(x[i])
        i += 1
    }
}
