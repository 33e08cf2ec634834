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

/// The softmax numerators `exp(x[j] − max)` of `x[0..<count]` rounded to BF16 into `out[0..<count]`, zeros in
/// `out[count..<paddedCount]` (`paddedCount` a multiple of 16 ≥ `count`); returns the F32 sum of the
/// numerators before rounding. `x` is only read. One pass instead of exponentials in place and a separate
/// conversion (a C call per row).
public func softmaxNumeratorsBF16(_ x: UnsafePointer<Float>, count: Int, paddedCount: Int, out: UnsafeMutablePointer<UInt16>) -> Float {
    let m = splat16(count > 0 ? rowMaximum(x, count) : 0)
    var s0 = zero16()
    var i = 0
    while i < paddedCount {
        let part = max(0, min(16, count - i))
        let scores = part == 16 ? load16(x + i) : loadPartial16(x + i, part, fill: -.infinity)
        let e = expNonPositive16(_mm512_sub_ps(scores, m))
        s0 = _mm512_add_ps(s0, e)
        _mm256_storeu_si256(UnsafeMutableRawPointer(out + i).assumingMemoryBound(to: __m256i.self), bf16Bits16(e))
        i += 16
    }
    return sum16(s0)
}
#endif
