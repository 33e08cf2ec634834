import Foundation
import Testing
@testable import Kernels

/// Deterministic pseudo-random values in [-1, 1).
private func randomValues(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(Int64(bitPattern: state) % 1_000_000) / 1_000_000
    }
}

private func maxError(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

struct AttentionShape: Sendable, CustomTestStringConvertible {
    let queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int, causalOffset: Int?
    var testDescription: String { "q\(queries) k\(keys) h\(heads)/\(kvHeads)×\(headDim) causal \(causalOffset.map(String.init) ?? "none")" }
}

/// Every attention path (direct loop for ≤ 4 queries; above, register tiles for head sizes that are
/// multiples of 16 — 6×16 ymm at avx2, 12×32 zmm at avx512 —, else BLAS per head and query block) against the
/// double-precision twin, on awkward shapes: GQA groups, one KV head, odd head dims, strided rows,
/// causal offsets (a chunk after cached keys), more queries than one 256-row block.
let attentionShapes: [AttentionShape] = [
    AttentionShape(queries: 1, keys: 1, heads: 3, kvHeads: 1, headDim: 16, causalOffset: 0),
    AttentionShape(queries: 1, keys: 37, heads: 4, kvHeads: 2, headDim: 32, causalOffset: 36),
    AttentionShape(queries: 3, keys: 20, heads: 6, kvHeads: 3, headDim: 12, causalOffset: 17),
    AttentionShape(queries: 9, keys: 9, heads: 2, kvHeads: 2, headDim: 64, causalOffset: nil),
    AttentionShape(queries: 13, keys: 40, heads: 4, kvHeads: 1, headDim: 24, causalOffset: 27),
    AttentionShape(queries: 300, keys: 300, heads: 2, kvHeads: 1, headDim: 16, causalOffset: 0),
    AttentionShape(queries: 5, keys: 5, heads: 16, kvHeads: 8, headDim: 128, causalOffset: nil),
    AttentionShape(queries: 50, keys: 77, heads: 4, kvHeads: 2, headDim: 32, causalOffset: 27),
    AttentionShape(queries: 100, keys: 100, heads: 3, kvHeads: 3, headDim: 48, causalOffset: nil),
    AttentionShape(queries: 97, keys: 130, heads: 2, kvHeads: 1, headDim: 64, causalOffset: 33),
    // Decode shapes of the AVX-512 group kernel: groups of 3 (a pair and a single head) × 64 dims, groups of 4
    // (the 4B/8B) × 128 dims over many keys, and 48 dims (no specialized width).
    AttentionShape(queries: 2, keys: 50, heads: 12, kvHeads: 4, headDim: 64, causalOffset: 48),
    AttentionShape(queries: 1, keys: 300, heads: 32, kvHeads: 8, headDim: 128, causalOffset: 299),
    AttentionShape(queries: 4, keys: 33, heads: 4, kvHeads: 1, headDim: 48, causalOffset: 29),
]

@Test("Attention matches its naive twin at the portable level", .enabled(if: runs(.portable)), arguments: attentionShapes)
func attentionPortable(_ s: AttentionShape) { KernelDispatch.withLevel(.portable) { attentionMatchesNaive(s) } }

@Test("Attention matches its naive twin at the avx2 level", .enabled(if: runs(.avx2)), arguments: attentionShapes)
func attentionAVX2(_ s: AttentionShape) { KernelDispatch.withLevel(.avx2) { attentionMatchesNaive(s) } }

@Test("Attention matches its naive twin at the avx512 level", .enabled(if: runs(.avx512)), arguments: attentionShapes)
func attentionAVX512(_ s: AttentionShape) { KernelDispatch.withLevel(.avx512) { attentionMatchesNaive(s) } }

@Test("Attention matches its naive twin at the amx level", .enabled(if: runs(.amx)), arguments: attentionShapes)
func attentionAMX(_ s: AttentionShape) { KernelDispatch.withLevel(.amx) { attentionMatchesNaive(s) } }

func attentionMatchesNaive(_ s: AttentionShape) {
    let ldq = s.heads * s.headDim + 5, ldkv = s.kvHeads * s.headDim + 3, ldo = s.heads * s.headDim + 7
    let q = randomValues(s.queries * ldq, seed: 1), k = randomValues(s.keys * ldkv, seed: 2), v = randomValues(s.keys * ldkv, seed: 3)
    var fast = [Float](repeating: 0, count: s.queries * ldo), slow = fast
    let scale = 1 / Float(s.headDim).squareRoot()
    fast.withUnsafeMutableBufferPointer { out in
        attention(q: q, ldq: ldq, queryCount: s.queries, k: k, v: v, ldkv: ldkv, keyCount: s.keys, heads: s.heads, kvHeads: s.kvHeads,
                  headDim: s.headDim, scale: scale, causalOffset: s.causalOffset, out: out.baseAddress!, ldo: ldo)
    }
    slow.withUnsafeMutableBufferPointer { out in
        naiveAttention(q: q, ldq: ldq, queryCount: s.queries, k: k, v: v, ldkv: ldkv, keyCount: s.keys, heads: s.heads, kvHeads: s.kvHeads,
                       headDim: s.headDim, scale: scale, causalOffset: s.causalOffset, out: out.baseAddress!, ldo: ldo)
    }
    // Compare only the written columns of each row (the stride padding is untouched by both).
    var worst: Float = 0
    for t in 0..<s.queries { for c in 0..<(s.heads * s.headDim) {
        let d = abs(fast[t * ldo + c] - slow[t * ldo + c])
        worst = d.isNaN ? .infinity : max(worst, d)
    } }
    #expect(worst < 1e-5, "max |Δ| \(worst)")
}

/// BF16 attention (quantized formats on AVX512_BF16 CPUs) against the double-precision twin, within the error
/// that rounding q, k, the probabilities and v to BF16 (8 significant bits: relative error ≤ u = 2⁻⁸ each)
/// can cause: a score moves by at most δᵢ = 2u·scale·maxⱼ Σ_d |q_id||k_jd|, a probability by pⱼ·2δᵢ, so an
/// output by (2δᵢ + 2u)·Σⱼ pⱼ|v_jd| (×1.5 for the F32 sums). A lane, pair or block mix-up is off by O(|v|).
@Test("BF16 attention stays within the BF16 rounding bound of the naive twin",
      .enabled(if: runs(.avx512) && CPUFeatures.host.avx512BF16), arguments: attentionShapes)
func attentionBF16(_ s: AttentionShape) {
    let ldq = s.heads * s.headDim + 5, ldkv = s.kvHeads * s.headDim + 3, ldo = s.heads * s.headDim + 7
    let q = randomValues(s.queries * ldq, seed: 11), k = randomValues(s.keys * ldkv, seed: 12), v = randomValues(s.keys * ldkv, seed: 13)
    var fast = [Float](repeating: 0, count: s.queries * ldo)
    let scale = 1 / Float(s.headDim).squareRoot()
    KernelDispatch.withLevel(.avx512) {
        fast.withUnsafeMutableBufferPointer { out in
            attention(q: q, ldq: ldq, queryCount: s.queries, k: k, v: v, ldkv: ldkv, keyCount: s.keys, heads: s.heads,
                      kvHeads: s.kvHeads, headDim: s.headDim, scale: scale, causalOffset: s.causalOffset,
                      out: out.baseAddress!, ldo: ldo, precision: .reduced)
        }
    }
    let group = s.heads / s.kvHeads, hd = s.headDim
    var worst = 0.0, largestError = 0.0
    for h in 0..<s.heads {
        let g = h / group
        for t in 0..<s.queries {
            let visible = s.causalOffset.map { min(s.keys, $0 + t + 1) } ?? s.keys
            var logits = [Double](repeating: 0, count: visible), delta = 0.0
            for j in 0..<visible {
                var dot = 0.0, magnitude = 0.0
                for d in 0..<hd {
                    let a = Double(q[t * ldq + h * hd + d]), b = Double(k[j * ldkv + g * hd + d])
                    dot += a * b
                    magnitude += abs(a * b)
                }
                logits[j] = dot * Double(scale)
                delta = max(delta, magnitude * Double(scale) / 128)
            }
            let m = logits.max() ?? 0
            let e = logits.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
            for d in 0..<hd {
                var exact = 0.0, spread = 0.0
                for j in 0..<visible {
                    let value = Double(v[j * ldkv + g * hd + d])
                    exact += e[j] / z * value
                    spread += e[j] / z * abs(value)
                }
                let bound = 1.5 * (2 * delta + 2.0 / 256) * spread + 1e-6
                let error = abs(Double(fast[t * ldo + h * hd + d]) - exact)
                worst = max(worst, error / bound)
                largestError = max(largestError, error)
            }
        }
    }
    #expect(worst <= 1, "error / bound = \(worst), largest error \(largestError)")
}

@Test("matmul (B not transposed) matches a direct sum", arguments: [(1, 5, 3), (7, 33, 19), (64, 16, 128)])
func matmulMatchesNaive(_ shape: (Int, Int, Int)) {
    let (m, k, n) = shape
    let a = randomValues(m * k, seed: 4), b = randomValues(k * n, seed: 5)
    var y = [Float](repeating: 0, count: m * n)
    y.withUnsafeMutableBufferPointer { matmul(a, rows: m, inner: k, b, columns: n, $0.baseAddress!) }
    var expected = [Float](repeating: 0, count: m * n)
    for r in 0..<m { for c in 0..<n { expected[r * n + c] = Float((0..<k).reduce(0.0) { $0 + Double(a[r * k + $1]) * Double(b[$1 * n + c]) }) } }
    #expect(maxError(y, expected) < 1e-4)
}

@Test("LayerNorm and RMSNorm match double-precision definitions", arguments: [1, 7, 128, 1031])
func normsMatchDefinitions(_ width: Int) {
    let rows = 3
    let x = randomValues(rows * width, seed: 6).map { $0 * 4 + 0.5 }
    let w = randomValues(width, seed: 7), b = randomValues(width, seed: 8)
    var ln = [Float](repeating: 0, count: rows * width), rms = ln
    ln.withUnsafeMutableBufferPointer { layerNorm(x, rows: rows, width: width, weight: w, bias: b, eps: 1e-6, $0.baseAddress!) }
    rms.withUnsafeMutableBufferPointer { rmsNorm(x, rows: rows, width: width, weight: w, eps: 1e-6, $0.baseAddress!) }
    for r in 0..<rows {
        let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
        let mean = row.reduce(0, +) / Double(width)
        let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
        let meanSquare = row.map { $0 * $0 }.reduce(0, +) / Double(width)
        for i in 0..<width {
            let expectedLN = (row[i] - mean) / (variance + 1e-6).squareRoot() * Double(w[i]) + Double(b[i])
            let expectedRMS = row[i] / (meanSquare + 1e-6).squareRoot() * Double(w[i])
            #expect(abs(Double(ln[r * width + i]) - expectedLN) < 2e-4 * max(1, abs(expectedLN)))
            #expect(abs(Double(rms[r * width + i]) - expectedRMS) < 2e-4 * max(1, abs(expectedRMS)))
        }
    }
}

@Test func activationsMatchDefinitions() {
    let x = randomValues(1000, seed: 9).map { $0 * 6 }
    var tanhGelu = x, erfGelu = x, gate = x
    let up = randomValues(1000, seed: 10)
    tanhGelu.withUnsafeMutableBufferPointer { geluTanh($0.baseAddress!, count: 1000) }
    erfGelu.withUnsafeMutableBufferPointer { geluErf($0.baseAddress!, count: 1000) }
    gate.withUnsafeMutableBufferPointer { siluMultiply($0.baseAddress!, up, count: 1000) }
    for i in 0..<1000 {
        let u = Double(x[i])
        #expect(abs(Double(tanhGelu[i]) - 0.5 * u * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (u + 0.044715 * u * u * u)))) < 1e-5)
        #expect(abs(Double(erfGelu[i]) - 0.5 * u * (1 + Foundation.erf(u / 2.squareRoot()))) < 1e-5)
        #expect(abs(Double(gate[i]) - u / (1 + Foundation.exp(-u)) * Double(up[i])) < 1e-4)
    }
}

@Test func rotaryRotatesHalves() {
    // One row, two heads of width 4: pairs (j, j+2) rotate by their angle.
    var x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
    let angles: [Float] = [0.3, -1.1]
    let cosT = angles.map { cosf($0) }, sinT = angles.map { sinf($0) }
    x.withUnsafeMutableBufferPointer { applyRotary($0.baseAddress!, rows: 1, heads: 2, headDim: 4, rowStride: 8, cos: cosT, sin: sinT) }
    let original: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
    for h in 0..<2 {
        for j in 0..<2 {
            let a = original[h * 4 + j], b = original[h * 4 + j + 2]
            #expect(abs(x[h * 4 + j] - (a * cosT[j] - b * sinT[j])) < 1e-6)
            #expect(abs(x[h * 4 + j + 2] - (b * cosT[j] + a * sinT[j])) < 1e-6)
        }
    }
}

@Test("Vector exp is within 2 ulp of exp over the float range; −∞ and underflow give 0, above 88.37 +∞, NaN stays NaN")
func vectorExpAccuracy() {
    var inputs: [Float] = [-.infinity, -1000, -104, -87.5, -87.3, -20, -1, -1e-7, 0, 1e-7, 0.5, 1, 10, 50, 88, 88.3, 89, 1000, .infinity, .nan]
    var state: UInt64 = 12345
    for _ in 0..<20_000 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        inputs.append(Float(Double(state >> 11) / Double(1 << 53) * 175 - 87))
    }
    var out = [Float](repeating: 0, count: inputs.count)
    inputs.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { vectorExp(x.baseAddress!, $0.baseAddress!, count: x.count) } }
    var worstUlps: Float = 0
    for (x, y) in zip(inputs, out) {
        if x.isNaN { #expect(y.isNaN); continue }
        if x < -87.34 { #expect(y == 0, "exp(\(x)) = \(y)"); continue }
        if x > 88.377 { #expect(y == .infinity, "exp(\(x)) = \(y)"); continue }
        let exact = Foundation.exp(Double(x))
        let ulp = Float(exact).ulp
        worstUlps = max(worstUlps, Float(abs(Double(y) - exact)) / ulp)
    }
    #expect(worstUlps <= 2, "worst error \(worstUlps) ulp")
}

@Test("Softmax matches the double-precision definition, with −∞ entries giving exactly 0", arguments: [1, 7, 8, 33, 1024])
func softmaxMatchesDefinition(_ count: Int) {
    var x = (0..<count).map { Float(sin(Double($0) * 1.7) * 12) }
    if count > 3 { x[2] = -.infinity }
    let reference: [Double] = {
        let m = Double(x.max()!)
        let e = x.map { Foundation.exp(Double($0) - m) }
        let z = e.reduce(0, +)
        return e.map { $0 / z }
    }()
    x.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, count: count) }
    for i in 0..<count { #expect(abs(Double(x[i]) - reference[i]) <= 1e-6 * max(1e-3, reference[i]) + 1e-12) }
    if count > 3 { #expect(x[2] == 0) }
}

/// Rows for the 16-lane softmax: lengths around the 16- and 32-lane steps, masked (−∞) tails, spreads past the
/// exponential's clamp (differences beyond −87 give 0), a row whose maximum is in the masked-load tail.
private func softmaxRows() -> [[Float]] {
    var rows: [[Float]] = []
    for (n, count) in [1, 7, 15, 16, 17, 31, 32, 33, 47, 100, 1024].enumerated() {
        var row = randomValues(count, seed: UInt64(40 + n)).map { $0 * 12 }
        if count > 8 { for j in (count - 3)..<count { row[j] = -.infinity } }
        rows.append(row)
    }
    rows.append((0..<45).map { Float($0) * -4.5 })           // 0 … −198: most numerators underflow to 0
    rows.append((0..<37).map { $0 == 36 ? 30 : Float($0) })   // the maximum is the last (tail) element
    return rows
}

/// `exp(x − max)` in double precision of the F32 difference (the kernels subtract in F32, which alone moves
/// the result by |x − max|·2⁻²⁴ relative), and their sum.
private func exactNumerators(_ row: [Float]) -> (values: [Double], sum: Double) {
    let m = row.max()!
    let values = row.map { Foundation.exp(Double($0 - m)) }
    return (values, values.reduce(0, +))
}

@Test("16-lane softmax numerators (avx512) match exp in double precision, tails and clamp included",
      .enabled(if: runs(.avx512)))
func softmaxNumeratorsSixteenLanes() {
    for row in softmaxRows() {
        var x = row
        let sum = x.withUnsafeMutableBufferPointer { softmaxNumerators16Entry($0.baseAddress!, count: row.count) }
        let exact = exactNumerators(row)
        // The polynomial's relative error is ≈ 2⁻²³; below e⁻⁸⁷·⁷ (1e-38) results flush to 0.
        for (j, e) in exact.values.enumerated() {
            #expect(abs(Double(x[j]) - e) <= 4e-7 * e + 2e-38, "row of \(row.count), element \(j): \(x[j]) vs \(e)")
        }
        #expect(abs(Double(sum) - exact.sum) <= 1e-6 * exact.sum, "row of \(row.count): sum \(sum) vs \(exact.sum)")
    }
}

@Test("16-lane softmax to BF16 (avx512) rounds each numerator to BF16 and zero-fills the padding",
      .enabled(if: runs(.avx512)))
func softmaxNumeratorsToBF16() {
    for row in softmaxRows() {
        let padded = (row.count + 15) / 16 * 16 + 16
        var out = [UInt16](repeating: 0xFFFF, count: padded + 1)
        let sum = row.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { softmaxNumeratorsBF16Entry(x.baseAddress!, count: row.count, paddedCount: padded, out: $0.baseAddress!) }
        }
        let exact = exactNumerators(row)
        for j in 0..<padded {
            let value = Double(Float(bitPattern: UInt32(out[j]) << 16))
            let e = j < row.count ? exact.values[j] : 0
            // BF16 keeps 8 significant bits: rounding to nearest is within half a unit of the 8th, 2⁻⁸ relative.
            #expect(abs(value - e) <= e / 256 + 2e-38, "row of \(row.count), element \(j): \(value) vs \(e)")
        }
        #expect(out[padded] == 0xFFFF, "wrote past the padded width")
        // This pass's exponential is a degree-4 polynomial with 1e-5 relative error (plus the F32 rounding of
        // x·log₂e − max·log₂e): far inside BF16's rounding, but looser than `expNonPositive16`.
        #expect(abs(Double(sum) - exact.sum) <= 2e-5 * exact.sum, "row of \(row.count): sum \(sum) vs \(exact.sum)")
    }
}

/// A BF16 KV cache gives the same attention as F32 rows holding the same (BF16-exact) values, at every level this
/// CPU runs: the decode kernel at avx512 widens in registers, the BF16 tiles pack the rows as they are, and
/// everything else widens the rows first. A wrong row stride, head offset or widening is off by O(|v|).
@Test("Attention over BF16 keys and values equals attention over the same values in F32, at every level",
      arguments: attentionShapes)
func attentionOverBF16Rows(_ s: AttentionShape) {
    let ldq = s.heads * s.headDim + 5, ldkv = s.kvHeads * s.headDim + 3, ldo = s.heads * s.headDim + 7
    let q = randomValues(s.queries * ldq, seed: 21)
    var k16 = [UInt16](repeating: 0, count: s.keys * ldkv), v16 = k16
    randomValues(s.keys * ldkv, seed: 22).withUnsafeBufferPointer { roundToBF16($0.baseAddress!, count: s.keys * ldkv, into: &k16) }
    randomValues(s.keys * ldkv, seed: 23).withUnsafeBufferPointer { roundToBF16($0.baseAddress!, count: s.keys * ldkv, into: &v16) }
    var k32 = [Float](repeating: 0, count: s.keys * ldkv), v32 = k32
    widenBF16(k16, count: k16.count, into: &k32)
    widenBF16(v16, count: v16.count, into: &v32)
    let scale = 1 / Float(s.headDim).squareRoot()
    for level in CPUFeatures.host.runnableLevels {
        for precision in [AttentionPrecision.f32, .reduced] {
            var fromBF16 = [Float](repeating: 0, count: s.queries * ldo), fromF32 = fromBF16
            KernelDispatch.withLevel(level) {
                k16.withUnsafeBufferPointer { k in v16.withUnsafeBufferPointer { v in
                    fromBF16.withUnsafeMutableBufferPointer { out in
                        attention(q: q, ldq: ldq, queryCount: s.queries, kv: .bf16(k: k.baseAddress!, v: v.baseAddress!), ldkv: ldkv,
                                  keyCount: s.keys, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, scale: scale,
                                  causalOffset: s.causalOffset, out: out.baseAddress!, ldo: ldo, precision: precision)
                    }
                } }
                k32.withUnsafeBufferPointer { k in v32.withUnsafeBufferPointer { v in
                    fromF32.withUnsafeMutableBufferPointer { out in
                        attention(q: q, ldq: ldq, queryCount: s.queries, kv: .f32(k: k.baseAddress!, v: v.baseAddress!), ldkv: ldkv,
                                  keyCount: s.keys, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, scale: scale,
                                  causalOffset: s.causalOffset, out: out.baseAddress!, ldo: ldo, precision: precision)
                    }
                } }
            }
            var worst: Float = 0
            for t in 0..<s.queries { for c in 0..<(s.heads * s.headDim) {
                let d = abs(fromBF16[t * ldo + c] - fromF32[t * ldo + c])
                worst = d.isNaN ? .infinity : max(worst, d)
            } }
            // The BF16 tiles for many queries at reduced precision see bit-identical operands; the F32 paths see
            // the same values; only the order of F32 sums may differ between the decode kernel and the loop.
            #expect(worst <= 1e-6, "level \(level), \(precision): max |Δ| \(worst)")
        }
    }
}

@Test("BF16 rounding is to nearest even, keeps NaN a NaN, and widening is exact")
func bf16RoundTrip() {
    let values: [Float] = [0, -0.0, 1, 1.00390625, 1.005859375, 1.0078125, -3.14159, 65504, .infinity, -.infinity, .nan, 1e-30]
    var rounded = [UInt16](repeating: 0, count: values.count), back = [Float](repeating: 0, count: values.count)
    roundToBF16(values, count: values.count, into: &rounded)
    widenBF16(rounded, count: rounded.count, into: &back)
    // 1 + 2⁻⁸ is a tie between 1 and 1 + 2⁻⁷: even gives 1; 1 + 1.5·2⁻⁸ rounds up.
    #expect(back[3] == 1)
    #expect(back[4] == 1.0078125)
    #expect(back[5] == 1.0078125)
    #expect(back[8] == .infinity && back[9] == -.infinity && back[10].isNaN)
    for (x, y) in zip(values, back) where x.isFinite && abs(x) > 1e-20 {
        #expect(abs(y - x) <= abs(x) / 256, "\(x) → \(y)")
    }
}
