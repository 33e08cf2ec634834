#if arch(x86_64)
import _Builtin_intrinsics.intel
import KernelsSIMD512

// The softmax rows of many-query attention on 16 lanes: at 1,024 patches the vision encoder takes 400 M
// exponentials per image (16 heads × 1,024² × 24 layers), ≈ 8% of its time with the 8-lane `exp`, and at
// OCR sizes 16× more. The drivers are `Kernels/TiledAttention.swift` and `Kernels/TiledAttentionBF16.swift`.

/// The row maximum of `x[0..<count]` (−∞ for an empty row). A NaN score may be skipped here, but its
/// numerator is NaN and so is the sum, as with the 8-lane softmax.
@inline(__always)
private func rowMaximum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var m0 = splat16(-Float.infinity), m1 = m0
    var i = 0
    while i + 32 <= count {
        m0 = larger16(m0, load16(x + i))
        m1 = larger16(m1, load16(x + i + 16))
        i += 32
    }
    if i + 16 <= count {
        m0 = larger16(m0, load16(x + i))
        i += 16
    }
    if i < count { m1 = larger16(m1, loadPartial16(x + i, count - i, fill: -.infinity)) }
    return maximum16(larger16(m0, m1))
}

/// `x[j] = exp(x[j] − max)` in place for `j < count`; returns `Σ x[j]` (the softmax denominator).
public func softmaxNumerators16(_ x: UnsafeMutablePointer<Float>, count: Int) -> Float {
    guard count > 0 else { return 0 }
    let m = splat16(rowMaximum(x, count))
    var s0 = zero16(), s1 = zero16()
    var i = 0
    while i + 32 <= count {
        let e0 = expNonPositive16(_mm512_sub_ps(load16(x + i), m)), e1 = expNonPositive16(_mm512_sub_ps(load16(x + i + 16), m))
        store16(e0, x + i)
        store16(e1, x + i + 16)
        s0 = _mm512_add_ps(s0, e0)
        s1 = _mm512_add_ps(s1, e1)
        i += 32
    }
    while i < count {
        let part = min(16, count - i)
        let e = expNonPositive16(_mm512_sub_ps(loadPartial16(x + i, part, fill: -.infinity), m))
        _mm512_mask_storeu_ps(x + i, UInt16(truncatingIfNeeded: (1 << part) &- 1), e)
        s0 = _mm512_add_ps(s0, e)
        i += part
    }
    return sum16(_mm512_add_ps(s0, s1))
}

/// `exp(x − max)` for numerators that are rounded to BF16 next (8 significant bits), in 10 instructions instead
/// of the 18 of `expNonPositive16`: t = x·log₂e − max·log₂e (one FMA), n = round(t) by the 1.5·2²³ trick,
/// 2^(t−n) by a degree-4 polynomial on [−½, ½] (relative error 1e-5, fitted here for 2ˣ; far below BF16's
/// 2⁻⁹), and `vscalefps` for the 2ⁿ (0 below 2⁻¹⁴⁹, so −∞ scores give 0 with no compare). NaN stays NaN.
@inline(__always)
private func numeratorForBF16(_ x: Floats16, negativeMaxLog2e: Floats16) -> Floats16 {
    let t = _mm512_max_ps(splat16(Float(-150)), fma16(x, splat16(1.442695040888963), negativeMaxLog2e))
    let magic = splat16(Float(12_582_912))  // 1.5·2²³: adding it rounds to an integer
    let n = _mm512_sub_ps(_mm512_add_ps(t, magic), magic)
    let f = _mm512_sub_ps(t, n)
    var p = fma16(splat16(9.630151093006134e-3), f, splat16(5.5818647146224976e-2))
    p = fma16(p, f, splat16(0.2402241975069046))
    p = fma16(p, f, splat16(0.6931350231170654))
    p = fma16(p, f, splat16(1.0000004768371582))
    return _mm512_scalef_ps(p, n)
}

/// The softmax numerators `exp(x[j] − max)` of `x[0..<count]` rounded to BF16 into `out[0..<count]`, zeros in
/// `out[count..<paddedCount]` (`paddedCount` a multiple of 16 ≥ `count`); returns the F32 sum of the
/// numerators before rounding. `x` is only read. One pass instead of exponentials in place and a separate
/// conversion (a C call per row): at 4,096 patches this pass was 12% of the vision time.
public func softmaxNumeratorsBF16(_ x: UnsafePointer<Float>, count: Int, paddedCount: Int, out: UnsafeMutablePointer<UInt16>) -> Float {
    let shift = splat16(count > 0 ? -rowMaximum(x, count) * 1.442695040888963 : 0)
    var s0 = zero16(), s1 = zero16()
    var i = 0
    while i + 32 <= count {
        let e0 = numeratorForBF16(load16(x + i), negativeMaxLog2e: shift)
        let e1 = numeratorForBF16(load16(x + i + 16), negativeMaxLog2e: shift)
        s0 = _mm512_add_ps(s0, e0)
        s1 = _mm512_add_ps(s1, e1)
        _mm256_storeu_si256(UnsafeMutableRawPointer(out + i).assumingMemoryBound(to: __m256i.self), bf16Bits16(e0))
        _mm256_storeu_si256(UnsafeMutableRawPointer(out + i + 16).assumingMemoryBound(to: __m256i.self), bf16Bits16(e1))
        i += 32
    }
    while i < paddedCount {
        let part = max(0, min(16, count - i))
        let e = numeratorForBF16(loadPartial16(x + i, part, fill: -.infinity), negativeMaxLog2e: shift)
        s0 = _mm512_add_ps(s0, e)
        _mm256_storeu_si256(UnsafeMutableRawPointer(out + i).assumingMemoryBound(to: __m256i.self), bf16Bits16(e))
        i += 16
    }
    return sum16(_mm512_add_ps(s0, s1))
}
#endif
