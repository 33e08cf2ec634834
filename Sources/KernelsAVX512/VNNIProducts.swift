#if arch(x86_64)
import _Builtin_intrinsics.intel
import KernelsSIMD512

// Int8 products with AVX-512 VNNI (`vpdpbusd`: 64 u8×s8 multiply-adds into 16 int32 lanes per
// instruction, 4× the `vpmaddwd` of the AVX2 level and with the add fused). This module is built with
// `-target-cpu icelake-server` and is called only after `KernelDispatch` chose the avx512 or amx level;
// it holds leaf kernels over raw pointers and nothing generic, so no code compiled for AVX-512 can be
// shared with (and run by) the lower levels. The drivers (threads, tiling, activation packing) are in
// `Kernels/VNNIProduct.swift`.
//
// Operands (see `Q8Layout.quads` and `QuadActivations`):
// - weights: per panel (16 output features) and block of 32 inputs, 8 rows of 64 bytes; row `q` holds
//   the 16 features' inputs `4q…4q+3` as `w + 128` (unsigned). One row is one zmm: features are lanes.
// - activations: row `r` of block `b` at `a + (b·stride + r)·32`, 32 signed bytes; a quad (4 bytes) is
//   broadcast to every lane. Scales at `aScales[b·stride + r]`, bias compensation
//   (`−128·Σ block`) at `aCompensation[b·stride + r]`: the accumulator starts there.
// - each block's int32 sums are folded into F32 with the two scales, `c += float(acc) · ws · xs`.

/// `c[r·ldc + 16p + f] += Σ_b (acc[r][p][f]) · ws[p][b][f] · xs[r][b]` for `rows` (1…6) activation rows ×
/// `panels` (1 or 2) weight panels over `blocks`. `weights[p]` / `weightScales[p]` point at panel `p`'s
/// block 0. `startAtZero`: `c` is not read (`=` instead of `+=`), so the first pass over the blocks needs
/// no zeroed buffer.
public func vnniTile(rows: Int, panels: Int,
                     a: UnsafePointer<Int8>, aScales: UnsafePointer<Float>, aCompensation: UnsafePointer<Int32>,
                     stride: Int,
                     weights: UnsafePointer<UnsafePointer<UInt8>>, weightScales: UnsafePointer<UnsafePointer<Float>>,
                     blocks: Range<Int>, c: UnsafeMutablePointer<Float>, ldc: Int, startAtZero: Bool = false) {
    let w0 = weights[0], w1 = weights[panels > 1 ? 1 : 0]
    let s0 = weightScales[0], s1 = weightScales[panels > 1 ? 1 : 0]
    // Both counts become constants in each `tile` call once `byRows` is inlined (unused rows compile away).
    @inline(__always) func byRows(_ P: Int) {
        switch rows {
        case 1: tile(1, P, a, aScales, aCompensation, stride, w0, w1, s0, s1, blocks, c, ldc, startAtZero)
        case 2: tile(2, P, a, aScales, aCompensation, stride, w0, w1, s0, s1, blocks, c, ldc, startAtZero)
        case 3: tile(3, P, a, aScales, aCompensation, stride, w0, w1, s0, s1, blocks, c, ldc, startAtZero)
        case 4: tile(4, P, a, aScales, aCompensation, stride, w0, w1, s0, s1, blocks, c, ldc, startAtZero)
        case 5: tile(5, P, a, aScales, aCompensation, stride, w0, w1, s0, s1, blocks, c, ldc, startAtZero)
        default: tile(6, P, a, aScales, aCompensation, stride, w0, w1, s0, s1, blocks, c, ldc, startAtZero)
        }
    }
    if panels > 1 { byRows(2) } else { byRows(1) }
}

/// `y[r·ldy + n0 + j] (+)= results[(r − rows.lowerBound)·ldc + j] + bias[n0 + j]` for `j < width` (1…16):
/// one panel of finished results into the output matrix (`accumulate`: added to what is there, the
/// residual stream). 16 lanes with a masked tail.
public func storePanel16(_ results: UnsafePointer<Float>, ldc: Int, rows: Range<Int>, features n0: Int, width: Int,
                         y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?, accumulate: Bool) {
    let mask = UInt16(truncatingIfNeeded: (1 << width) &- 1)
    let b = bias.map { _mm512_maskz_loadu_ps(mask, $0 + n0) } ?? zero16()
    for r in rows {
        let dst = y + (r &* ldy &+ n0)
        var v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, results + (r &- rows.lowerBound) &* ldc), b)
        if accumulate { v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst)) }
        _mm512_mask_storeu_ps(dst, mask, v)
    }
}

/// The microkernel: `R` rows × `P` panels (constants at every call site, so unused rows compile away).
/// The F32 results stay in registers across all blocks (read once, written once): 2R F32 and 2R int32
/// accumulators, two weight rows and a broadcast — 30 of the 32 zmm registers at R = 6. Per quad of inputs:
/// P loads, R broadcasts, R·P `vpdpbusd`; per block and (row, panel): a convert, a scale product and an FMA.
/// (8 rows with the results in memory, loaded and stored every block, ran at 46% of the `vpdpbusd` limit
/// in L1 on Zen 4; this at 72%.)
@inline(__always)
private func tile(_ R: Int, _ P: Int,
                  _ a: UnsafePointer<Int8>, _ aScales: UnsafePointer<Float>, _ aCompensation: UnsafePointer<Int32>,
                  _ stride: Int, _ w0: UnsafePointer<UInt8>, _ w1: UnsafePointer<UInt8>,
                  _ s0: UnsafePointer<Float>, _ s1: UnsafePointer<Float>,
                  _ blocks: Range<Int>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ startAtZero: Bool) {
    @inline(__always) func result(_ i: Int, _ p: Int) -> Floats16 {
        i < R && p < P && !startAtZero ? load16(c + i &* ldc + 16 &* p) : zero16()
    }
    var c00 = result(0, 0), c01 = result(0, 1), c10 = result(1, 0), c11 = result(1, 1), c20 = result(2, 0), c21 = result(2, 1)
    var c30 = result(3, 0), c31 = result(3, 1), c40 = result(4, 0), c41 = result(4, 1), c50 = result(5, 0), c51 = result(5, 1)
    for b in blocks {
        let ab = UnsafeRawPointer(a + b &* stride &* 32)
        let comp = aCompensation + b &* stride, xs = aScales + b &* stride
        @inline(__always) func start(_ i: Int) -> Ints16 { i < R ? splat16(comp[i]) : splat16(Int32(0)) }
        var a00 = start(0), a01 = start(0), a10 = start(1), a11 = start(1), a20 = start(2), a21 = start(2)
        var a30 = start(3), a31 = start(3), a40 = start(4), a41 = start(4), a50 = start(5), a51 = start(5)
        let p0 = UnsafeRawPointer(w0 + b &* 512), p1 = UnsafeRawPointer(w1 + b &* 512)
        for q in 0..<8 {
            let v0 = loadQuads(p0 + q &* 64)
            let v1 = P > 1 ? loadQuads(p1 + q &* 64) : v0
            @inline(__always) func row(_ i: Int, _ lo: inout Ints16, _ hi: inout Ints16) {
                let x = broadcastQuad(ab, i &* 32 &+ q &* 4)
                lo = dotQuads(lo, v0, x)
                if P > 1 { hi = dotQuads(hi, v1, x) }
            }
            row(0, &a00, &a01)
            if R > 1 { row(1, &a10, &a11) }
            if R > 2 { row(2, &a20, &a21) }
            if R > 3 { row(3, &a30, &a31) }
            if R > 4 { row(4, &a40, &a41) }
            if R > 5 { row(5, &a50, &a51) }
        }
        let ws0 = load16(s0 + b &* 16), ws1 = P > 1 ? load16(s1 + b &* 16) : ws0
        @inline(__always) func fold(_ i: Int, _ lo: Ints16, _ hi: Ints16, _ clo: inout Floats16, _ chi: inout Floats16) {
            let scale = splat16(xs[i])
            clo = fold16(lo, mul16(ws0, scale), clo)
            if P > 1 { chi = fold16(hi, mul16(ws1, scale), chi) }
        }
        fold(0, a00, a01, &c00, &c01)
        if R > 1 { fold(1, a10, a11, &c10, &c11) }
        if R > 2 { fold(2, a20, a21, &c20, &c21) }
        if R > 3 { fold(3, a30, a31, &c30, &c31) }
        if R > 4 { fold(4, a40, a41, &c40, &c41) }
        if R > 5 { fold(5, a50, a51, &c50, &c51) }
    }
    @inline(__always) func store(_ i: Int, _ lo: Floats16, _ hi: Floats16) {
        store16(lo, c + i &* ldc)
        if P > 1 { store16(hi, c + i &* ldc + 16) }
    }
    store(0, c00, c01)
    if R > 1 { store(1, c10, c11) }
    if R > 2 { store(2, c20, c21) }
    if R > 3 { store(3, c30, c31) }
    if R > 4 { store(4, c40, c41) }
    if R > 5 { store(5, c50, c51) }
}

/// Decode: one activation row × `streams` (1…4) panels anywhere in memory (`weights[i]`, scales
/// `weightScales[i]`), all blocks; panel `i`'s 16 results go to `c[16i ..< 16i + 16]` (overwritten).
/// Several independent weight streams per core keep more misses in flight (decode is bound by memory).
public func vnniOneRow(streams: Int, a: UnsafePointer<Int8>, aScales: UnsafePointer<Float>,
                       aCompensation: UnsafePointer<Int32>, stride: Int,
                       weights: UnsafePointer<UnsafePointer<UInt8>>, weightScales: UnsafePointer<UnsafePointer<Float>>,
                       blocks: Int, c: UnsafeMutablePointer<Float>) {
    switch streams {
    case 1: oneRow(1, a, aScales, aCompensation, stride, weights, weightScales, blocks, c)
    case 2: oneRow(2, a, aScales, aCompensation, stride, weights, weightScales, blocks, c)
    case 3: oneRow(3, a, aScales, aCompensation, stride, weights, weightScales, blocks, c)
    default: oneRow(4, a, aScales, aCompensation, stride, weights, weightScales, blocks, c)
    }
}

@inline(__always)
private func oneRow(_ S: Int, _ a: UnsafePointer<Int8>, _ aScales: UnsafePointer<Float>,
                    _ aCompensation: UnsafePointer<Int32>, _ stride: Int,
                    _ weights: UnsafePointer<UnsafePointer<UInt8>>, _ weightScales: UnsafePointer<UnsafePointer<Float>>,
                    _ blocks: Int, _ c: UnsafeMutablePointer<Float>) {
    let q0 = UnsafeRawPointer(weights[0]), q1 = UnsafeRawPointer(weights[min(1, S - 1)])
    let q2 = UnsafeRawPointer(weights[min(2, S - 1)]), q3 = UnsafeRawPointer(weights[min(3, S - 1)])
    let t0 = weightScales[0], t1 = weightScales[min(1, S - 1)], t2 = weightScales[min(2, S - 1)], t3 = weightScales[min(3, S - 1)]
    var c0 = zero16(), c1 = zero16(), c2 = zero16(), c3 = zero16()
    for b in 0..<blocks {
        let ab = UnsafeRawPointer(a + b &* stride &* 32)
        let start = splat16(aCompensation[b &* stride])
        var s0 = start, s1 = start, s2 = start, s3 = start
        let o = b &* 512
        for q in 0..<8 {
            let x = broadcastQuad(ab, q &* 4)
            let oq = o &+ q &* 64
            s0 = dotQuads(s0, loadQuads(q0 + oq), x)
            if S > 1 { s1 = dotQuads(s1, loadQuads(q1 + oq), x) }
            if S > 2 { s2 = dotQuads(s2, loadQuads(q2 + oq), x) }
            if S > 3 { s3 = dotQuads(s3, loadQuads(q3 + oq), x) }
        }
        let xs = splat16(aScales[b &* stride])
        c0 = fold16(s0, mul16(load16(t0 + b &* 16), xs), c0)
        if S > 1 { c1 = fold16(s1, mul16(load16(t1 + b &* 16), xs), c1) }
        if S > 2 { c2 = fold16(s2, mul16(load16(t2 + b &* 16), xs), c2) }
        if S > 3 { c3 = fold16(s3, mul16(load16(t3 + b &* 16), xs), c3) }
    }
    store16(c0, c)
    if S > 1 { store16(c1, c + 16) }
    if S > 2 { store16(c2, c + 32) }
    if S > 3 { store16(c3, c + 48) }
}
#endif

