import Foundation
import Testing
import Tensors
@testable import Kernels
import KernelsSIMD

/// Deterministic random numbers (SplitMix64), so a failure reproduces.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random values with occasional outliers (like real weights/activations) and exact zeros.
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var g = SeededRandom(seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count {
        let u = Float.random(in: -1...1, using: &g)
        let r = Int.random(in: 0..<50, using: &g)
        t[i] = scale * (r == 0 ? 8 * u : r == 1 ? 0 : u)
    }
    return t
}

/// Shapes `(out, in)`: multiples of 32, and the odd fixture's non-multiples (80, 100, 200), a single
/// partial block (5) and an odd number of blocks (96 = 3 blocks, exercising the unrolled tail).
/// (40, 600): 19 blocks of 32 inputs, so the AVX-512 tiles make three passes of 8 blocks (the first starts at zero).
let quantShapes: [(out: Int, in: Int)] = [(37, 100), (64, 80), (5, 32), (130, 200), (33, 96), (7, 5), (300, 64), (40, 600)]

@Test("Q8 quantization round-trips within half a step, padding is zero, in both layouts",
      arguments: quantShapes.indices, Q8Layout.allCases)
func q8RoundTrip(_ s: Int, _ layout: Q8Layout) {
    let (n, k) = quantShapes[s]
    let w = randomTensor([n, k], seed: UInt64(s))
    let q = Q8Matrix(quantizing: w, layout: layout)
    #expect(q.paddedColumns % 32 == 0 && q.paddedColumns >= k && q.paddedColumns < k + 32)
    for r in 0..<n {
        var out = [Float](repeating: .nan, count: k)
        out.withUnsafeMutableBufferPointer { q.dequantizeRow(r, into: $0.baseAddress!) }
        for i in 0..<k {
            let scale = q.scale(r, block: i / 32)
            #expect(abs(out[i] - w[r * k + i]) <= scale * 0.5001 + 1e-7)
        }
        for i in k..<q.paddedColumns { #expect(q.quant(r, i) == 0) }
        for i in 0..<q.paddedColumns { #expect(q.quant(r, i) != -128) }
    }
    // Padding rows of the last panel hold zeros, and the panel layout covers every byte exactly once.
    #expect(q.paddedRows % 16 == 0 && q.paddedRows >= n && q.paddedRows < n + 16)
    for r in n..<q.paddedRows {
        for i in 0..<q.paddedColumns { #expect(q.quant(r, i) == 0) }
        for b in 0..<q.blocks { #expect(q.scale(r, block: b) == 0) }
    }
    var seen = Set<Int>()
    for r in 0..<q.paddedRows { for i in 0..<q.paddedColumns { seen.insert(q.byteOffset(row: r, column: i)) } }
    #expect(seen.count == q.quantsByteCount && seen.min() == 0 && seen.max() == q.quantsByteCount - 1)
    // The two layouts hold the same values: quads are a permutation of pairs with +128 on each byte.
    let other = Q8Matrix(quantizing: w, layout: layout == .pairs ? .quads : .pairs)
    for r in 0..<n { for i in 0..<k { #expect(other.quant(r, i) == q.quant(r, i)) } }
}

@Test("Q4 quantization round-trips within half a step (one step where +8 clamps to +7); the extreme value is exact", arguments: quantShapes.indices)
func q4RoundTrip(_ s: Int) {
    let (n, k) = quantShapes[s]
    let w = randomTensor([n, k], seed: 100 + UInt64(s))
    let q = Q4Matrix(quantizing: w)
    for r in 0..<n {
        var out = [Float](repeating: .nan, count: k)
        out.withUnsafeMutableBufferPointer { q.dequantizeRow(r, into: $0.baseAddress!) }
        for b in 0..<q.blocks {
            let scale = abs(q.scales[r * q.blocks + b])
            var extreme = 0
            for i in (b * 32)..<min(k, b * 32 + 32) {
                // Values on the other side of zero from the extreme may reach +8 steps and clamp at +7.
                let clamped = w[r * k + i] / q.scales[r * q.blocks + b] > 7.5
                #expect(abs(out[i] - w[r * k + i]) <= scale * (clamped ? 1.0001 : 0.5001) + 1e-7, "row \(r) col \(i)")
                if abs(w[r * k + i]) > abs(w[r * k + extreme]) || extreme < b * 32 { extreme = i }
            }
            #expect(abs(out[extreme] - w[r * k + extreme]) <= 1e-6 * abs(w[r * k + extreme]))
        }
    }
}

@Test("Integer block dot products: Q8 pair words, Q4 vector words and the naive twin agree with exact integer sums", arguments: [1, 2, 3, 7, 64])
func blockDots(_ blocks: Int) {
    var g = SeededRandom(UInt64(blocks))
    let n = blocks * 32
    let w = (0..<n).map { _ in Int8.random(in: -127...127, using: &g) }
    let x = (0..<n).map { _ in Int8.random(in: -127...127, using: &g) }
    let w4 = (0..<(n / 2)).map { _ in UInt8.random(in: 0...255, using: &g) }
    let ws = (0..<blocks).map { _ in Float.random(in: 0.001...0.1, using: &g) }
    let xs = (0..<blocks).map { _ in Float.random(in: 0.001...0.1, using: &g) }
    let xsums = (0..<blocks).map { b in (0..<32).reduce(Int32(0)) { $0 + Int32(x[b * 32 + $1]) } }
    var exact8 = 0.0, exact4 = 0.0
    for b in 0..<blocks {
        var s8 = 0, s4 = 0
        for j in 0..<32 {
            s8 += Int(w[b * 32 + j]) * Int(x[b * 32 + j])
            let byte = w4[b * 16 + j % 16]
            s4 += (Int(j < 16 ? byte & 15 : byte >> 4) - 8) * Int(x[b * 32 + j])
        }
        exact8 += Double(s8) * Double(ws[b]) * Double(xs[b])
        exact4 += Double(s4) * Double(ws[b]) * Double(xs[b])
    }
    let tolerance = 1e-5 * Double(blocks) * 32 * 127 * 127 * 0.01
    // Q8 through the pair words of the AVX2 kernels: 8 lanes, each a feature; put the weights in lane 3 only
    // (the others zero) so a lane or pair mix-up shows.
    var q8 = 0.0
    for b in 0..<blocks {
        var acc = SIMD8<Int32>()
        for p in 0..<16 {
            var row = SIMD16<Int16>()
            row[6] = Int16(w[b * 32 + 2 * p]); row[7] = Int16(w[b * 32 + 2 * p + 1])
            let pair = Int32(bitPattern: UInt32(UInt16(bitPattern: Int16(x[b * 32 + 2 * p])))
                             | UInt32(UInt16(bitPattern: Int16(x[b * 32 + 2 * p + 1]))) << 16)
            acc = dotPairs(acc, pair, row)
        }
        #expect(acc[0] == 0 && acc[1] == 0 && acc[2] == 0 && acc[4] == 0 && acc[7] == 0)
        q8 += Double(acc[3]) * Double(ws[b]) * Double(xs[b])
    }
    #expect(abs(q8 - exact8) <= tolerance, "pair words Q8 \(q8) vs \(exact8)")
    let p4 = dotQ4Portable(w4, ws, x, xs, xsums, blocks: blocks)
    #expect(abs(Double(p4) - exact4) <= tolerance)
    let a4 = dotQ4(w4, ws, x, xs, xsums, blocks: blocks)
    #expect(abs(Double(a4) - exact4) <= tolerance, "vector Q4 \(a4) vs \(exact4)")
}

/// Bound on the error that quantizing the activations to Q8 may add to `Σ x·ŵ`: each `x` moves by at
/// most half its block's step, so `|Δ| ≤ Σ_i |ŵ_i| · step(x)_i / 2` (plus float rounding).
func activationBound(_ wq: (Int, Int) -> Double, out o: Int, x: UnsafePointer<Float>, k: Int) -> Double {
    var bound = 0.0
    for b in 0..<((k + 31) / 32) {
        var amax: Float = 0
        for i in (b * 32)..<min(k, b * 32 + 32) { amax = max(amax, abs(x[i])) }
        let step = Double(amax) / 127
        for i in (b * 32)..<min(k, b * 32 + 32) { bound += abs(wq(o, i)) * step / 2 }
    }
    return bound * 1.001 + 1e-5
}

enum Format: String, CaseIterable { case q8, q4 }

struct ProductCase: CustomTestStringConvertible, Sendable {
    let format: Format, shape: Int, rows: Int
    var testDescription: String { "\(format) \(quantShapes[shape]) × \(rows) rows" }
    static let all: [ProductCase] = Format.allCases.flatMap { f in
        quantShapes.indices.flatMap { s in [1, 2, 3, 4, 7, 16, 17, 33, 45, 70].map { ProductCase(format: f, shape: s, rows: $0) } }
    }
}

/// Whether this host runs `level`; tests of a level it lacks are skipped (reported as not run, never as passed).
func runs(_ level: CPULevel) -> Bool { CPUFeatures.host.runnableLevels.contains(level) }

@Test("Quantized forward matches its naive twin at the portable level", .enabled(if: runs(.portable)), arguments: ProductCase.all)
func quantizedForwardPortable(_ c: ProductCase) { KernelDispatch.withLevel(.portable) { quantizedForward(c) } }

@Test("Quantized forward matches its naive twin at the avx2 level", .enabled(if: runs(.avx2)), arguments: ProductCase.all)
func quantizedForwardAVX2(_ c: ProductCase) { KernelDispatch.withLevel(.avx2) { quantizedForward(c) } }

@Test("Quantized forward matches its naive twin at the avx512 level (VNNI)", .enabled(if: runs(.avx512)), arguments: ProductCase.all)
func quantizedForwardAVX512(_ c: ProductCase) { KernelDispatch.withLevel(.avx512) { quantizedForward(c) } }

@Test("Quantized forward matches its naive twin at the amx level", .enabled(if: runs(.amx)), arguments: ProductCase.all)
func quantizedForwardAMX(_ c: ProductCase) { KernelDispatch.withLevel(.amx) { quantizedForward(c) } }

/// One product at the active level (integer dot products up to smallBatchLimit rows, packed integer GEMM
/// or tiled sgemm above; VNNI/AMX kernels for every row count at the avx512 and amx levels) against its
/// naive twin, with strides, bias, accumulate.
func quantizedForward(_ c: ProductCase) {
    let (n, k) = quantShapes[c.shape]
    let m = c.rows
    let w = randomTensor([n, k], seed: 7 + UInt64(c.shape), scale: 0.05)
    let bias = randomTensor([n], seed: 99)
    let ldx = k + 3, ldy = n + 5
    let xs = randomTensor([m, ldx], seed: 1000 + UInt64(m))
    let xPacked = Tensor(shape: [m, k])
    for r in 0..<m { (xPacked.data + r * k).update(from: xs.data + r * ldx, count: k) }

    let layer = LinearWeight(w, bias: bias, format: c.format == .q8 ? .q8 : .q4)
    let expected = Tensor(shape: [m, n])
    let wq: (Int, Int) -> Double
    switch layer.storage {
    case .q8(let q):
        naiveQuantizedProduct(q, xPacked.data, rows: m, expected.data, bias: bias.data)
        wq = { o, i in Double(q.quant(o, i)) * Double(q.scale(o, block: i / 32)) }
    case .q4(let q):
        naiveQuantizedProduct(q, xPacked.data, rows: m, expected.data, bias: bias.data)
        let dq = Tensor(shape: [n, k])
        dequantizeRowsQ4(q, 0..<n, into: dq.data, ld: k)
        wq = { o, i in Double(dq[o * k + i]) }
    case .f32: fatalError()
    }

    // Plain, then accumulate on top of a known pattern.
    let y = Tensor(shape: [m, ldy])
    for i in 0..<y.count { y[i] = .nan }
    layer.forward(xs.data, rows: m, ldx: ldx, into: y.data, ldy: ldy)
    let y2 = Tensor(shape: [m, ldy])
    for i in 0..<y2.count { y2[i] = Float(i % 7) }
    layer.forward(xs.data, rows: m, ldx: ldx, into: y2.data, ldy: ldy, accumulate: true)

    // Both integer kernels quantize the activations (the dot products up to smallBatchLimit rows, the
    // packed int16 GEMM above it in AVX2 builds); tiled sgemm keeps them F32.
    let quads: Bool
    if case .q8(let q) = layer.storage { quads = q.layout == .quads } else { quads = false }
    let integerPath = quads || m <= QuantizedGEMM.smallBatchLimit || QuantizedGEMM.usesPackedIntegerKernel
    var worstRatio = 0.0
    for r in 0..<m {
        for o in 0..<n {
            let e = Double(expected[r * n + o])
            let bound = integerPath ? activationBound(wq, out: o, x: xPacked.data + r * k, k: k)
                                    : 1e-5 * (1 + abs(e)) * Double(k).squareRoot()
            let err = abs(Double(y[r * ldy + o]) - e)
            let err2 = abs(Double(y2[r * ldy + o]) - Double((r * ldy + o) % 7) - e)
            worstRatio = max(worstRatio, err / bound, err2 / bound)
        }
        // The padding columns of y were not touched.
        for o in n..<ldy { #expect(y[r * ldy + o].isNaN) }
    }
    #expect(worstRatio <= 1, "\(c.testDescription) at \(KernelDispatch.level): error / bound = \(worstRatio)")
}

/// Both layouts quantize activations the same way and sum the same integers, so a level's kernels must agree
/// with the portable ones to float rounding (a wrong lane, block or compensation shows as a large error).
@Test("Every level's Q8 kernels agree with the portable kernels on the same weights, both layouts",
      arguments: [1, 2, 5, 16, 31, 70])
func levelsAgree(_ m: Int) {
    let (n, k) = (130, 200)
    let w = randomTensor([n, k], seed: 21, scale: 0.05), x = randomTensor([m, k], seed: 22)
    for layout in Q8Layout.allCases {
        let q = Q8Matrix(quantizing: w, layout: layout)
        // The portable twin of each layout's kernels, called directly (an AVX2 build has no portable level).
        let reference = Tensor(shape: [m, n])
        switch layout {
        case .pairs: portablePairsProduct(q, x.data, rows: m, into: reference.data)
        case .quads:
            let a = QuadActivations(x.data, rows: m, columns: k, ld: k)
            QuantizedGEMM.quadPortable(q, a, y: reference.data, ldy: n, bias: nil, accumulate: false)
        }
        for level in CPUFeatures.host.runnableLevels {
            // The portable level multiplies many `.pairs` rows with F32 sgemm tiles (no activation quantization):
            // `quantizedForward` bounds that path against the naive twin instead.
            let integer = KernelDispatch.withLevel(level) { QuantizedGEMM.usesPackedIntegerKernel }
            if layout == .pairs, m > QuantizedGEMM.smallBatchLimit, !integer { continue }
            let y = Tensor(shape: [m, n])
            KernelDispatch.withLevel(level) {
                QuantizedGEMM.forward(q, x.data, rows: m, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false)
            }
            var worst: Float = 0
            for i in 0..<y.count { worst = max(worst, abs(y[i] - reference[i]) / (1e-3 + abs(reference[i]))) }
            #expect(worst <= 1e-4, "\(layout) at \(level), \(m) rows: relative difference \(worst)")
        }
    }
}

@Test("Tiled product with tiles that do not divide the output count", arguments: [1, 3, 16, 50])
func tiledProductTiles(_ tile: Int) {
    let (n, k, m) = (45, 100, 20)
    let w = randomTensor([n, k], seed: 5)
    let q = Q8Matrix(quantizing: w)
    let x = randomTensor([m, k], seed: 6)
    let bias = randomTensor([n], seed: 8)
    let expected = Tensor(shape: [m, n])
    naiveQuantizedProduct(q, x.data, rows: m, expected.data, bias: bias.data)
    let y = Tensor(shape: [m, n])
    QuantizedGEMM.tiledProduct(x.data, rows: m, ldx: k, inner: k, columns: n, y: y.data, ldy: n, bias: bias.data,
                               accumulate: false, tileRows: tile) { range, out in dequantizeRowsQ8(q, range, into: out, ld: k) }
    for i in 0..<y.count { #expect(abs(y[i] - expected[i]) <= 1e-4 * (1 + abs(expected[i]))) }
}

@Test("F32 matmulTransposedB matches its naive twin (sgemv and sgemm paths)", arguments: [1, 2, 9])
func f32Product(_ m: Int) {
    let (n, k) = (37, 100)
    let w = randomTensor([n, k], seed: 11), x = randomTensor([m, k], seed: 12), bias = randomTensor([n], seed: 13)
    let y = Tensor(shape: [m, n]), expected = Tensor(shape: [m, n])
    LinearWeight(w, bias: bias, format: .f32).forward(x.data, rows: m, into: y.data)
    naiveMatmulTransposedB(x.data, rows: m, inner: k, w.data, columns: n, expected.data, bias: bias.data)
    for i in 0..<y.count { #expect(abs(y[i] - expected[i]) <= 1e-4 * (1 + abs(expected[i]))) }
}

@Test("byteCount reports the stored bytes of each format")
func byteCounts() {
    let w = randomTensor([64, 100], seed: 1)
    #expect(LinearWeight(w, bias: nil, format: .f32).byteCount == 64 * 100 * 4)
    #expect(LinearWeight(w, bias: nil, format: .q8).byteCount == 64 * 128 + 64 * 4 * 4)
    #expect(LinearWeight(w, bias: nil, format: .q4).byteCount == 64 * 64 + 64 * 4 * 4)
}

@Test("Parallel.forRanges covers every index exactly once")
func parallelCoverage() {
    for count in [0, 1, 2, 3, 17, 1000] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(1, count))
        hits.initialize(repeating: 0, count: max(1, count))
        Parallel.forRanges(count, minimumPerThread: 1) { range in for i in range { hits[i] += 1 } }
        #expect((0..<count).allSatisfy { hits[$0] == 1 })
        hits.deallocate()
    }
}

/// The portable few-rows kernel over a `.pairs` matrix, for any number of rows (tiles of 4).
func portablePairsProduct(_ w: Q8Matrix, _ x: UnsafePointer<Float>, rows m: Int, into y: UnsafeMutablePointer<Float>) {
    let a = WideActivations(x, rows: m, columns: w.columns, ld: w.columns, tileRows: smallTileRows)
    let tile = UnsafeMutablePointer<Float>.allocate(capacity: smallTileRows * 16)
    defer { tile.deallocate() }
    for panel in 0..<w.panels {
        for t in 0..<a.tiles {
            tile.initialize(repeating: 0, count: smallTileRows * 16)
            fewRowsTileNaive(min(smallTileRows, m - t * smallTileRows), w.quants + panel * w.blocks * Q8Matrix.panelBlockBytes,
                                w.scales + panel * w.blocks * 16, a.pairs + t * a.pairsPerTile, a.scales + t * a.scalesPerTile,
                                blocks: w.blocks, tile)
            for i in 0..<min(smallTileRows, m - t * smallTileRows) {
                for f in 0..<min(16, w.rows - panel * 16) { y[(t * smallTileRows + i) * w.rows + panel * 16 + f] = tile[i * 16 + f] }
            }
        }
    }
}
