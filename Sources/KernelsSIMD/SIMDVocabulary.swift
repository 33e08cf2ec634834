import Foundation
#if POSTLENS_AVX2
import _Builtin_intrinsics.intel
#endif

// The words the kernels' vector code is written in — the one place below the AVX-512 module that knows
// instructions. A module of its own with `@inlinable` words: debug builds compile the kernels file by file,
// and only another module's inlinable code is inlined across files there. Floats are Swift SIMD values: compiled for Haswell (AVX2 builds) they become ymm loads,
// `vfmadd`, `vmaxps`, `vcvtdq2ps`…, compiled portably they are whatever the target has, from the same
// source. Integer products that Swift SIMD cannot express (`vpmaddwd`, `vpmaddubsw`, saturating packs)
// are AVX2 intrinsics here with a plain-loop twin for portable builds. The AVX-512 level's words are in
// `Sources/KernelsAVX512/Vocabulary512.swift`; which level runs is `KernelDispatch`'s business alone.

/// Eight floats: one ymm register in AVX2 builds.
public typealias Floats8 = SIMD8<Float>
/// Eight int32 sums.
public typealias Ints8 = SIMD8<Int32>
/// Sixteen int16 values: a widened pair row of a Q8 panel (8 features × 2 inputs).
public typealias Shorts16 = SIMD16<Int16>

// MARK: - Floats

@inlinable @inline(__always)
public func load8(_ p: UnsafePointer<Float>) -> Floats8 { UnsafeRawPointer(p).loadUnaligned(as: Floats8.self) }

@inlinable @inline(__always)
public func store8(_ v: Floats8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Floats8.self) }

/// `a·b + c`, fused (`vfmadd` in AVX2 builds).
@inlinable @inline(__always)
public func fma(_ a: Floats8, _ b: Floats8, _ c: Floats8) -> Floats8 { c.addingProduct(a, b) }

/// Σ lanes as a tree (`SIMD.sum()` adds the lanes one by one, a chain of 7 dependent adds).
@inlinable @inline(__always)
public func sum(_ v: Floats8) -> Float {
    let v4 = v.lowHalf + v.highHalf
    let v2 = v4.lowHalf + v4.highHalf
    return v2[0] + v2[1]
}

/// Lane-wise larger / smaller value (`vmaxps`/`vminps`; the stdlib's generic `pointwiseMax` is an
/// out-of-line call per vector).
@inlinable @inline(__always)
public func larger(_ a: Floats8, _ b: Floats8) -> Floats8 {
    #if POSTLENS_AVX2
    return _mm256_max_ps(a, b)
    #else
    // maxps semantics: the second operand when either is NaN (exp's clamp relies on it).
    return b.replacing(with: a, where: a .> b)
    #endif
}

@inlinable @inline(__always)
public func smaller(_ a: Floats8, _ b: Floats8) -> Floats8 {
    #if POSTLENS_AVX2
    return _mm256_min_ps(a, b)
    #else
    // minps semantics: the second operand when either is NaN.
    return b.replacing(with: a, where: a .< b)
    #endif
}

/// Largest lane.
@inlinable @inline(__always)
public func maximum(_ v: Floats8) -> Float {
    var m = v[0]
    for i in 1..<8 where v[i] > m { m = v[i] }
    return m
}

/// Lanes rounded to the nearest integer, ties to even (`vcvtps2dq` under the default rounding mode).
@inlinable @inline(__always)
public func roundToInts(_ v: Floats8) -> Ints8 {
    #if POSTLENS_AVX2
    return unsafeBitCast(_mm256_cvtps_epi32(v), to: Ints8.self)
    #else
    var out = Ints8()
    // cvtps2dq semantics: NaN and out-of-range lanes give Int32.min ("integer indefinite") instead of trapping.
    for i in 0..<8 {
        let r = v[i].rounded(.toNearestOrEven)
        out[i] = r >= -2147483648 && r < 2147483648 ? Int32(r) : Int32.min
    }
    return out
    #endif
}

/// Int32 lanes as floats (`vcvtdq2ps`).
@inlinable @inline(__always)
public func floats(_ v: Ints8) -> Floats8 {
    #if POSTLENS_AVX2
    return _mm256_cvtepi32_ps(unsafeBitCast(v, to: __m256i.self))
    #else
    var out = Floats8()
    for i in 0..<8 { out[i] = Float(v[i]) }
    return out
    #endif
}

/// e^x for 8 lanes. libm's `expf` is a scalar call per value; the vision encoder's softmax alone evaluates
/// ≈ 400 M of them for one 512×512 image (16 heads × 1,024² scores × 24 blocks), which took longer than all
/// of its weight products. The classic Cephes `expf` scheme: `x = n·ln2 + r` with |r| ≤ ln2/2 (ln2 in two
/// parts so `r` is exact), a degree-6 polynomial for `e^r`, and `2^n` built in the exponent bits. Error
/// ≤ 2 ulp over the float range (`FloatKernelTests` checks it against `exp` in double precision). Inputs
/// below −87.3 give 0 (including −∞, the attention mask); above 88.37 give +∞; NaN stays NaN.
@inlinable @inline(__always)
public func exp(_ x: Floats8) -> Floats8 {
    let hi = Floats8(repeating: 88.37626), lo = Floats8(repeating: -87.33654)
    let clamped = larger(smaller(x, hi), lo)
    let ni = roundToInts(clamped * 1.442695040888963)
    let n = floats(ni)
    var r = fma(n, Floats8(repeating: -0.693359375), clamped)
    r = fma(n, Floats8(repeating: 2.12194440e-4), r)
    var p = Floats8(repeating: 1.9875691500e-4)
    p = fma(p, r, Floats8(repeating: 1.3981999507e-3))
    p = fma(p, r, Floats8(repeating: 8.3334519073e-3))
    p = fma(p, r, Floats8(repeating: 4.1665795894e-2))
    p = fma(p, r, Floats8(repeating: 1.6666665459e-1))
    p = fma(p, r, Floats8(repeating: 5.0000001201e-1))
    let er = fma(p, r * r, r) + 1
    // 2^n: n + 127 in the exponent field (n ∈ [−126, 127] after the clamp).
    let bits = (ni &+ 127) &<< 23
    let result = er * unsafeBitCast(bits, to: Floats8.self)
    return result.replacing(with: 0, where: x .< lo).replacing(with: .infinity, where: x .> hi)
        .replacing(with: .nan, where: x .!= x)
}

// MARK: - Int8 pairs (Q8 panels, `Q8Layout.pairs`)

/// 16 int8 at `p` widened to int16 (`vpmovsxbw`): one pair row of 8 features.
@inlinable @inline(__always)
public func widenPairs(_ p: UnsafeRawPointer) -> Shorts16 {
    #if POSTLENS_AVX2
    return unsafeBitCast(_mm256_cvtepi8_epi16(_mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self))), to: Shorts16.self)
    #else
    let bytes = p.loadUnaligned(as: SIMD16<Int8>.self)
    var out = Shorts16()
    for i in 0..<16 { out[i] = Int16(bytes[i]) }
    return out
    #endif
}

/// `acc[f] + x0·w[2f] + x1·w[2f+1]` for the 8 features `f`, where `pair` holds `x0` (low 16 bits) and
/// `x1` (high): `vpmaddwd` of the broadcast pair, then `vpaddd`.
@inlinable @inline(__always)
public func dotPairs(_ acc: Ints8, _ pair: Int32, _ w: Shorts16) -> Ints8 {
    #if POSTLENS_AVX2
    let product = _mm256_madd_epi16(_mm256_set1_epi32(pair), unsafeBitCast(w, to: __m256i.self))
    return acc &+ unsafeBitCast(product, to: Ints8.self)
    #else
    let x0 = Int32(Int16(truncatingIfNeeded: pair)), x1 = Int32(Int16(truncatingIfNeeded: pair >> 16))
    var out = acc
    for f in 0..<8 { out[f] &+= x0 &* Int32(w[2 * f]) &+ x1 &* Int32(w[2 * f + 1]) }
    return out
    #endif
}

/// `c[0..<8] += Float(acc) · scale`: one block's integer sums into the F32 result.
@inlinable @inline(__always)
public func fold(_ acc: Ints8, _ scale: Floats8, into c: UnsafeMutablePointer<Float>) {
    store8(fma(floats(acc), scale, load8(c)), c)
}

/// 16 rows × 32 int8 values (one Q4 block unpacked; `rows[c]` points at row `c`) into Q8 panel order as
/// int16 (`out[p·32 + 2c + j]` = row `c`, input `2p + j`). AVX2: per group of 8 rows and half-block an 8×8
/// transpose of 16-bit units (each a pair of int8 inputs) with SSE2 unpacks, then `vpmovsxbw` widens
/// each transposed unit row into 8 features' int16 pairs.
@inlinable @inline(__always)
public func transposePairs(_ rows: UnsafeMutablePointer<UnsafePointer<Int8>>, into out: UnsafeMutablePointer<Int16>) {
    #if POSTLENS_AVX2
    for group in 0..<2 {
        for half in 0..<2 {
            @inline(__always) func row(_ i: Int) -> __m128i {
                _mm_loadu_si128(UnsafeRawPointer(rows[group * 8 + i] + half * 16).assumingMemoryBound(to: __m128i.self))
            }
            let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7)
            let a0 = _mm_unpacklo_epi16(r0, r1), a1 = _mm_unpackhi_epi16(r0, r1)
            let a2 = _mm_unpacklo_epi16(r2, r3), a3 = _mm_unpackhi_epi16(r2, r3)
            let a4 = _mm_unpacklo_epi16(r4, r5), a5 = _mm_unpackhi_epi16(r4, r5)
            let a6 = _mm_unpacklo_epi16(r6, r7), a7 = _mm_unpackhi_epi16(r6, r7)
            let b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2)
            let b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3)
            let b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6)
            let b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7)
            @inline(__always) func store(_ u: Int, _ v: __m128i) {
                let dst = UnsafeMutableRawPointer(out + (half * 8 + u) * 32 + group * 16)
                _mm256_storeu_si256(dst.assumingMemoryBound(to: __m256i.self), _mm256_cvtepi8_epi16(v))
            }
            store(0, _mm_unpacklo_epi64(b0, b4)); store(1, _mm_unpackhi_epi64(b0, b4))
            store(2, _mm_unpacklo_epi64(b1, b5)); store(3, _mm_unpackhi_epi64(b1, b5))
            store(4, _mm_unpacklo_epi64(b2, b6)); store(5, _mm_unpackhi_epi64(b2, b6))
            store(6, _mm_unpacklo_epi64(b3, b7)); store(7, _mm_unpackhi_epi64(b3, b7))
        }
    }
    #else
    for c in 0..<16 {
        for k in 0..<32 { out[(k / 2) * 32 + 2 * c + k % 2] = Int16(rows[c][k]) }
    }
    #endif
}

// MARK: - Q4 nibbles × Q8

/// Σ n_j·x_j over one Q4 block (16 bytes at `w`: 32 unsigned nibbles, element `j` low and `j + 16` high)
/// and its 32 int8 activations at `x`, as 8 partial int32 sums (add the lanes for the total). AVX2: one
/// 128-bit load, the high nibbles shifted into the upper lane, masked, straight into `vpmaddubsw`
/// (unsigned × signed, no sign trick: values 0…15 cannot saturate), then `vpmaddwd` by ones.
@inlinable @inline(__always)
public func nibbleDot(_ w: UnsafePointer<UInt8>, _ x: UnsafePointer<Int8>) -> Ints8 {
    #if POSTLENS_AVX2
    let raw = _mm_loadu_si128(UnsafeRawPointer(w).assumingMemoryBound(to: __m128i.self))
    let nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F))
    let vx = _mm256_loadu_si256(UnsafeRawPointer(x).assumingMemoryBound(to: __m256i.self))
    return unsafeBitCast(_mm256_madd_epi16(_mm256_maddubs_epi16(nibbles, vx), _mm256_set1_epi16(1)), to: Ints8.self)
    #else
    var s: Int32 = 0
    for j in 0..<16 { s &+= Int32(w[j] & 0x0F) &* Int32(x[j]) &+ Int32(w[j] >> 4) &* Int32(x[j + 16]) }
    var out = Ints8()
    out[0] = s
    return out
    #endif
}

// MARK: - Quantizing

/// One full Q8 block: `scale = max|x| / 127`, `q = round-to-nearest-even(x / scale)`; returns the scale.
/// AVX2 (the scalar loop does not vectorize: float max-reductions and float→int conversions with range
/// checks stay scalar): `vmaxps`, `vcvtps2dq` (the default rounding is to nearest even), two saturating
/// packs to bytes and a lane fix-up. |x / scale| ≤ 127 up to an ulp, so no value becomes −128.
@inlinable @inline(__always)
public func quantizeBlock32(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>) -> Float {
    let v0 = load8(x), v1 = load8(x + 8), v2 = load8(x + 16), v3 = load8(x + 24)
    let amax = maximum(larger(larger(abs(v0), abs(v1)), larger(abs(v2), abs(v3))))
    let scale = amax / 127
    let inverse = Floats8(repeating: scale > 0 ? 1 / scale : 0)
    #if POSTLENS_AVX2
    let i0 = _mm256_cvtps_epi32(v0 * inverse), i1 = _mm256_cvtps_epi32(v1 * inverse)
    let i2 = _mm256_cvtps_epi32(v2 * inverse), i3 = _mm256_cvtps_epi32(v3 * inverse)
    // Packs work per 128-bit lane: 32-bit groups come out as i0lo i1lo i2lo i3lo i0hi i1hi i2hi i3hi.
    let packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3))
    let ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    _mm256_storeu_si256(UnsafeMutableRawPointer(q).assumingMemoryBound(to: __m256i.self), ordered)
    #else
    for (i, v) in [v0, v1, v2, v3].enumerated() {
        let r = (v * inverse).rounded(.toNearestOrEven)
        for j in 0..<8 { q[8 * i + j] = Int8(truncatingIfNeeded: Int32(max(-127, min(127, r[j])))) }
    }
    #endif
    return scale
}

/// |v| lane by lane.
@inlinable @inline(__always)
public func abs(_ v: Floats8) -> Floats8 {
    unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Floats8.self)
}

// MARK: - Instruction limits (`postlens bench`)

/// 12 chains of `vpaddd(vpmaddwd)` (16 multiply-adds each; `dotPairs` in portable builds), each madd
/// depending on its chain so that none is hoisted out of the loop.
@inline(never)
public func maddPeakLoop(_ iterations: Int, seed: Int32) -> Int32 {
    #if POSTLENS_AVX2
    let w = _mm256_set1_epi32(seed | 0x0001_0001), one = _mm256_set1_epi32(1)
    var s0 = one, s1 = one, s2 = one, s3 = one, s4 = one, s5 = one, s6 = one, s7 = one, s8 = one, s9 = one, s10 = one, s11 = one
    for _ in 0..<iterations {
        s0 = _mm256_add_epi32(one, _mm256_madd_epi16(s0, w)); s1 = _mm256_add_epi32(one, _mm256_madd_epi16(s1, w))
        s2 = _mm256_add_epi32(one, _mm256_madd_epi16(s2, w)); s3 = _mm256_add_epi32(one, _mm256_madd_epi16(s3, w))
        s4 = _mm256_add_epi32(one, _mm256_madd_epi16(s4, w)); s5 = _mm256_add_epi32(one, _mm256_madd_epi16(s5, w))
        s6 = _mm256_add_epi32(one, _mm256_madd_epi16(s6, w)); s7 = _mm256_add_epi32(one, _mm256_madd_epi16(s7, w))
        s8 = _mm256_add_epi32(one, _mm256_madd_epi16(s8, w)); s9 = _mm256_add_epi32(one, _mm256_madd_epi16(s9, w))
        s10 = _mm256_add_epi32(one, _mm256_madd_epi16(s10, w)); s11 = _mm256_add_epi32(one, _mm256_madd_epi16(s11, w))
    }
    let t = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)),
                             _mm256_add_epi32(_mm256_add_epi32(s4, s5), _mm256_add_epi32(s6, s7)))
    let u = _mm256_add_epi32(t, _mm256_add_epi32(_mm256_add_epi32(s8, s9), _mm256_add_epi32(s10, s11)))
    return unsafeBitCast(u, to: Ints8.self).wrappedSum()
    #else
    let w = unsafeBitCast(Ints8(repeating: seed | 0x0001_0001), to: Shorts16.self)
    var s0 = Ints8(repeating: 1), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0, s9 = s0, s10 = s0, s11 = s0
    for _ in 0..<iterations {
        s0 = dotPairs(s0, s0[0], w); s1 = dotPairs(s1, s1[0], w); s2 = dotPairs(s2, s2[0], w); s3 = dotPairs(s3, s3[0], w)
        s4 = dotPairs(s4, s4[0], w); s5 = dotPairs(s5, s5[0], w); s6 = dotPairs(s6, s6[0], w); s7 = dotPairs(s7, s7[0], w)
        s8 = dotPairs(s8, s8[0], w); s9 = dotPairs(s9, s9[0], w); s10 = dotPairs(s10, s10[0], w); s11 = dotPairs(s11, s11[0], w)
    }
    return ((s0 &+ s1 &+ s2 &+ s3) &+ (s4 &+ s5 &+ s6 &+ s7) &+ (s8 &+ s9 &+ s10 &+ s11)).wrappedSum()
    #endif
}

/// 12 chains of 8-lane `fma`.
@inline(never)
public func fmaPeakLoop256(_ iterations: Int, seed: Float) -> Float {
    let a = Floats8(repeating: seed), b = Floats8(repeating: 0.999)
    var s0 = a, s1 = a, s2 = a, s3 = a, s4 = a, s5 = a, s6 = a, s7 = a, s8 = a, s9 = a, s10 = a, s11 = a
    for _ in 0..<iterations {
        s0 = fma(s0, b, a); s1 = fma(s1, b, a); s2 = fma(s2, b, a); s3 = fma(s3, b, a)
        s4 = fma(s4, b, a); s5 = fma(s5, b, a); s6 = fma(s6, b, a); s7 = fma(s7, b, a)
        s8 = fma(s8, b, a); s9 = fma(s9, b, a); s10 = fma(s10, b, a); s11 = fma(s11, b, a)
    }
    return sum((s0 + s1 + s2 + s3) + (s4 + s5 + s6 + s7) + (s8 + s9 + s10 + s11))
}
