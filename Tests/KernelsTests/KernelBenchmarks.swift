import Foundation
import Testing
import Tensors
@testable import Kernels

/// Opt-in microbenchmarks of the quantized kernels (the kernels are built with -O even in debug):
/// `POSTLENS_BENCH=1 swift test --filter KernelBenchmarks`. Prints best-of-N timings; the machine
/// is shared, so take the best and repeat. Mutates `Parallel.threadCount` and
/// `QuantizedGEMM.smallBatchLimit`: run it alone (with the filter), not beside other tests.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["POSTLENS_BENCH"] == "1"))
struct KernelBenchmarks {
    static func best(_ reps: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<reps {
            let t = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return best
    }

    /// A Q8 matrix filled with a cheap pattern (speed does not depend on values).
    static func patternQ8(_ rows: Int, _ columns: Int) -> Q8Matrix {
        let q = Q8Matrix(rows: rows, columns: columns, layout: .preferred)
        Parallel.forRanges(q.quantsByteCount, minimumPerThread: 1 << 20) { r in
            for i in r { q.quants[i] = Int8(truncatingIfNeeded: (i &* 37) % 255 - 127) }
        }
        for i in 0..<(q.paddedRows * q.blocks) { q.scales[i] = 0.01 }
        return q
    }

    static func patternQ4(_ rows: Int, _ columns: Int) -> Q4Matrix {
        let q = Q4Matrix(rows: rows, columns: columns)
        for i in 0..<(rows * q.paddedColumns / 2) { q.quants[i] = UInt8(truncatingIfNeeded: i &* 37) }
        for i in 0..<(rows * q.blocks) { q.scales[i] = 0.01 }
        return q
    }

    @Test func matVec() {
        let saved = Parallel.threadCount
        defer { Parallel.setThreadCount(saved) }
        for (n, k) in [(6144, 2048), (151936, 2048)] {
            let q8 = Self.patternQ8(n, k), q4 = Self.patternQ4(n, k)
            let x = Tensor(shape: [16, k])
            for i in 0..<x.count { x[i] = Float(i % 13) - 6 }
            let y = Tensor(shape: [16, n])
            for threads in [1, 2] {
                Parallel.setThreadCount(threads)
                let reps = n > 100_000 ? 5 : 40
                for rows in [1, 4, 16] {
                    let t8 = Self.best(reps) { QuantizedGEMM.forward(q8, x.data, rows: rows, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) }
                    let t4 = Self.best(reps) { QuantizedGEMM.forward(q4, x.data, rows: rows, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) }
                    print(String(format: "[bench] %dx%d rows=%2d threads=%d  Q8 %.3f ms %.1f GB/s  |  Q4 %.3f ms %.1f GB/s",
                                 n, k, rows, threads, t8 * 1e3, Double(q8.byteCount) / t8 / 1e9, t4 * 1e3, Double(q4.byteCount) / t4 / 1e9))
                }
            }
        }
    }

    /// Every runnable level's Q8 products at the shapes of the vision blocks (1,024 patches), prefill
    /// (320 tokens), batched decode (8 rows) and decode (1 row, GB/s of weights).
    @Test func levels() {
        let saved = Parallel.threadCount
        defer { Parallel.setThreadCount(saved) }
        if let threads = ProcessInfo.processInfo.environment["POSTLENS_BENCH_THREADS"].flatMap(Int.init) { Parallel.setThreadCount(threads) }
        let shapes = [(1024, 1024, 3072), (1024, 4096, 1024), (320, 2048, 6144), (320, 6144, 2048), (8, 2048, 6144), (1, 2048, 6144), (1, 2048, 151936)]
        for level in CPUFeatures.host.runnableLevels {
            KernelDispatch.withLevel(level) {
                let peak = InstructionPeaks.integerGOPS(level)
                print(String(format: "[bench] %@ %@ limit: %.0f GOPS", level.description, InstructionPeaks.integerInstruction(level).name, peak))
                for (m, k, n) in shapes {
                    let q8 = Self.patternQ8(n, k)
                    let x = Tensor(shape: [m, k]), y = Tensor(shape: [m, n])
                    for i in 0..<x.count { x[i] = Float(i % 13) - 6 }
                    let t = Self.best(m == 1 ? 20 : 5) { QuantizedGEMM.forward(q8, x.data, rows: m, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) }
                    let flops = 2.0 * Double(m * k * n)
                    print(String(format: "[bench] %@ (%@) M=%d K=%d N=%d: %.1f GOPS (%.0f%% of the limit), %.1f GB/s of weights, %.3f ms",
                                 level.description, q8.layout.rawValue, m, k, n, flops / t / 1e9, 100 * flops / t / 1e9 / peak,
                                 Double(q8.byteCount) / t / 1e9, t * 1e3))
                }
            }
        }
    }

    /// Tile grouping and pass length of the VNNI products, interleaved, best of 7 each (a shared machine).
    @Test(.enabled(if: runs(.avx512))) func vnniTuning() {
        let saved = Parallel.threadCount, savedGroup = vnniGroupTiles, savedPass = vnniPassBlocks
        defer { Parallel.setThreadCount(saved); vnniGroupTiles = savedGroup; vnniPassBlocks = savedPass }
        if let threads = ProcessInfo.processInfo.environment["POSTLENS_BENCH_THREADS"].flatMap(Int.init) { Parallel.setThreadCount(threads) }
        KernelDispatch.withLevel(.avx512) {
            for (m, k, n) in [(1024, 1024, 3072), (1024, 4096, 1024), (320, 6144, 2048)] {
                let q8 = Self.patternQ8(n, k)
                let x = Tensor(shape: [m, k]), y = Tensor(shape: [m, n])
                for i in 0..<x.count { x[i] = Float(i % 13) - 6 }
                let configs = [(1, 1 << 20), (1, 8), (1, 16), (2, 8), (2, 16), (4, 4), (4, 8), (8, 2), (8, 4)]
                var best = [Double](repeating: .infinity, count: configs.count)
                for _ in 0..<7 {
                    for (i, (g, p)) in configs.enumerated() {
                        vnniGroupTiles = g; vnniPassBlocks = p
                        best[i] = min(best[i], Self.best(1) { QuantizedGEMM.forward(q8, x.data, rows: m, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) })
                    }
                }
                for (i, (g, p)) in configs.enumerated() {
                    print(String(format: "[bench] M=%d K=%d N=%d group %d tiles, pass %d blocks: %.1f GFLOPS", m, k, n, g, min(p, k / 32), 2.0 * Double(m * k * n) / best[i] / 1e9))
                }
            }
        }
    }

    /// The AVX-512 microkernel alone on L1-resident operands (6 rows × 2 panels × 8 blocks per call), one
    /// thread, against the `vpdpbusd` issue limit measured the same way.
    @Test(.enabled(if: runs(.avx512))) func vnniMicrokernel() {
        let saved = Parallel.threadCount
        defer { Parallel.setThreadCount(saved) }
        Parallel.setThreadCount(1)
        let blocks = 8, stride = 16
        let a = UnsafeMutablePointer<Int8>.allocate(capacity: blocks * stride * 32)
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: blocks * stride)
        let comp = UnsafeMutablePointer<Int32>.allocate(capacity: blocks * stride)
        let w = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * blocks * 512)
        let ws = UnsafeMutablePointer<Float>.allocate(capacity: 2 * blocks * 16)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: 16 * 32)
        for i in 0..<(blocks * stride * 32) { a[i] = Int8(truncatingIfNeeded: i &* 7) }
        for i in 0..<(blocks * stride) { scales[i] = 0.01; comp[i] = 0 }
        for i in 0..<(2 * blocks * 512) { w[i] = UInt8(truncatingIfNeeded: i &* 13) }
        for i in 0..<(2 * blocks * 16) { ws[i] = 0.01 }
        c.initialize(repeating: 0, count: 16 * 32)
        let panels = UnsafeMutablePointer<UnsafePointer<UInt8>>.allocate(capacity: 2)
        let panelScales = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 2)
        panels[0] = UnsafePointer(w); panels[1] = UnsafePointer(w + blocks * 512)
        panelScales[0] = UnsafePointer(ws); panelScales[1] = UnsafePointer(ws + blocks * 16)
        let calls = 20_000
        for rows in [6, 4, 1] {
            let t = Self.best(5) {
                for _ in 0..<calls {
                    vnniTileEntry(rows: rows, panels: 2, a: a, aScales: scales, aCompensation: comp, stride: stride,
                                  weights: panels, weightScales: panelScales, blocks: 0..<blocks, c: c, ldc: 32)
                }
            }
            let ops = 2.0 * Double(rows * 32 * blocks * 32 * calls)
            print(String(format: "[bench] vnniTile %d rows × 2 panels, L1: %.1f GOPS (1 thread)", rows, ops / t / 1e9))
        }
        print(String(format: "[bench] vpdpbusd limit (1 thread): %.1f GOPS", InstructionPeaks.integerGOPS(.avx512)))
    }

    /// The packed integer GEMM at the shapes of the vision blocks (1,024 patches) and of prefill.
    @Test func packedShapes() {
        for (m, k, n) in [(1024, 1024, 3072), (1024, 1024, 1024), (1024, 1024, 4096), (1024, 4096, 1024), (320, 2048, 6144), (320, 6144, 2048)] {
            let q8 = Self.patternQ8(n, k)
            let x = Tensor(shape: [m, k]), y = Tensor(shape: [m, n])
            for i in 0..<x.count { x[i] = Float(i % 13) - 6 }
            let w = Tensor(shape: [n, k])
            for i in 0..<w.count { w[i] = Float(i % 7) - 3 }
            let f32 = LinearWeight(w, bias: nil, format: .f32)
            let t = Self.best(5) { QuantizedGEMM.packedProduct(q8, x.data, rows: m, columns: k, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) }
            let tf = Self.best(5) { f32.forward(x.data, rows: m, into: y.data) }
            let flops = 2.0 * Double(m * k * n)
            print(String(format: "[bench] M=%d K=%d N=%d: packed integer %.1f GFLOPS, sgemm F32 %.1f GFLOPS", m, k, n, flops / t / 1e9, flops / tf / 1e9))
        }
    }

    @Test func gemm() {
        let (m, k, n) = (512, 2048, 6144)
        var g = SystemRandomNumberGenerator()
        let w = Tensor(shape: [n, k]), x = Tensor(shape: [m, k]), y = Tensor(shape: [m, n])
        for i in 0..<w.count { w[i] = Float.random(in: -1...1, using: &g) }
        for i in 0..<x.count { x[i] = Float.random(in: -1...1, using: &g) }
        let f32 = LinearWeight(w, bias: nil, format: .f32)
        var q8 = Q8Matrix(quantizing: w), q4 = Q4Matrix(quantizing: w)
        let tq8 = Self.best(3) { q8 = Q8Matrix(quantizing: w) }
        let tq4 = Self.best(3) { q4 = Q4Matrix(quantizing: w) }
        print(String(format: "[bench] quantize at load: Q8 %.1f M weights/s, Q4 %.1f M weights/s", Double(n * k) / tq8 / 1e6, Double(n * k) / tq4 / 1e6))
        let flops = 2.0 * Double(m * k * n)
        let tf = Self.best(5) { f32.forward(x.data, rows: m, into: y.data) }
        print(String(format: "[bench] GEMM M=%d K=%d N=%d threads=%d  sgemm F32 %.1f GFLOPS", m, k, n, Parallel.threadCount, flops / tf / 1e9))
        for tileBytes in [1 << 20, 4 << 20, 8 << 20] {
            let t8 = Self.best(5) {
                QuantizedGEMM.tiledProduct(x.data, rows: m, ldx: k, inner: k, columns: n, y: y.data, ldy: n, bias: nil, accumulate: false,
                                           tileRows: tileBytes / (4 * k)) { r, o in dequantizeRowsQ8(q8, r, into: o, ld: k) }
            }
            let t4 = Self.best(5) {
                QuantizedGEMM.tiledProduct(x.data, rows: m, ldx: k, inner: k, columns: n, y: y.data, ldy: n, bias: nil, accumulate: false,
                                           tileRows: tileBytes / (4 * k)) { r, o in dequantizeRowsQ4(q4, r, into: o, ld: k) }
            }
            print(String(format: "[bench]   tile %d MiB: Q8 dequantized-tile %.1f GFLOPS, Q4 %.1f GFLOPS", tileBytes >> 20, flops / t8 / 1e9, flops / t4 / 1e9))
        }
        for rows in [64, 128, 256, 512] {
            let tp8 = Self.best(5) { QuantizedGEMM.packedProduct(q8, x.data, rows: rows, columns: k, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) }
            let tp4 = Self.best(5) { QuantizedGEMM.packedProduct(q4, x.data, rows: rows, columns: k, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false) }
            let f = 2.0 * Double(rows * k * n)
            print(String(format: "[bench]   rows=%d: packed integer Q8 %.1f GFLOPS, Q4 %.1f GFLOPS", rows, f / tp8 / 1e9, f / tp4 / 1e9))
        }
        // Integer path at this M for comparison (crossover of smallBatchLimit).
        QuantizedGEMM.smallBatchLimit = 1000
        defer { QuantizedGEMM.smallBatchLimit = 64 }
        for rows in [16, 32, 64, 128] {
            let t = Self.best(3) {
                QuantizedGEMM.forward(q8, x.data, rows: rows, ldx: k, into: y.data, ldy: n, bias: nil, accumulate: false)
            }
            let tt = Self.best(3) {
                QuantizedGEMM.tiledProduct(x.data, rows: rows, ldx: k, inner: k, columns: n, y: y.data, ldy: n, bias: nil, accumulate: false) { r, o in dequantizeRowsQ8(q8, r, into: o, ld: k) }
            }
            print(String(format: "[bench]   rows=%d: integer path %.1f GFLOPS, tiled sgemm %.1f GFLOPS", rows, 2.0 * Double(rows * k * n) / t / 1e9, 2.0 * Double(rows * k * n) / tt / 1e9))
        }
    }
}

extension KernelBenchmarks {
    @Test func parallelScaling() {
        let saved = Parallel.threadCount
        defer { Parallel.setThreadCount(saved) }
        for threads in [1, 2] {
            Parallel.setThreadCount(threads)
            let t = Self.best(3) {
                Parallel.forRanges(2) { range in
                    var x: Float = 1
                    for i in 0..<(100_000_000 * range.count) { x = x * 0.9999 + Float(i & 1) }
                    precondition(x != 12345)
                }
            }
            print(String(format: "[bench] forRanges(2) with %d threads: %.3f s", threads, t))
        }
    }
}

extension KernelBenchmarks {
    /// Vision attention at 1,024 and 4,096 patches (16 heads × 64, one image, no mask), in GFLOPS.
    /// Vision attention (16 heads × 64 dims) at every runnable level, F32 and reduced (BF16 where the CPU has it).
    @Test func visionAttention() {
        for level in CPUFeatures.host.runnableLevels {
            for precision in [AttentionPrecision.f32, .reduced] {
                KernelDispatch.withLevel(level) {
                    for n in [1024, 4096] {
                        let heads = 16, hd = 64, ld = 3 * heads * hd
                        let qkv = Tensor(shape: [n, ld]), out = Tensor(shape: [n, heads * hd])
                        for i in 0..<qkv.count { qkv[i] = Float((i &* 2654435761) % 1000) / 1000 - 0.5 }
                        let t = Self.best(3) {
                            attention(q: qkv.data, ldq: ld, queryCount: n, k: qkv.data + heads * hd, v: qkv.data + 2 * heads * hd,
                                      ldkv: ld, keyCount: n, heads: heads, kvHeads: heads, headDim: hd, scale: 0.125,
                                      causalOffset: nil, out: out.data, ldo: heads * hd, precision: precision)
                        }
                        let flops = 4.0 * Double(heads) * Double(n) * Double(n) * Double(hd)
                        print(String(format: "[bench] %@ %@ vision attention n=%d: %.1f ms, %.1f GFLOPS", level.description,
                                     "\(precision)", n, t * 1e3, flops / t / 1e9))
                    }
                }
            }
        }
    }
}

extension KernelBenchmarks {
    /// Only the weight products of one 2B decode step (28 layers × 7 matrices + the output matrix, Q8, one row),
    /// to separate the products' time from the rest of a step.
    /// One small decode product (1 row × 1,024 × 2,048) repeated: the per-call cost at each level.
    @Test func smallDecodeProduct() {
        for level in CPUFeatures.host.runnableLevels {
            KernelDispatch.withLevel(level) {
                let m = Self.patternQ8(1024, 2048)
                let x = Tensor(shape: [1, 2048]), y = Tensor(shape: [1, 1024])
                for i in 0..<x.count { x[i] = Float(i % 13) - 6 }
                let t = Self.best(5) {
                    for _ in 0..<1000 { QuantizedGEMM.forward(m, x.data, rows: 1, ldx: 2048, into: y.data, ldy: 1024, bias: nil, accumulate: false) }
                }
                print(String(format: "[bench] %@ 1 × 2048 × 1024 product: %.1f µs per call", level.description, t * 1e3))
            }
        }
    }

    /// The weight products of one 2B decode step (28 layers × 7 matrices + the output matrix, Q8) at every
    /// runnable level and 1, 4, 8 rows, runs interleaved across levels (the machine's bandwidth moves by ×2
    /// within minutes when shared), best of 5 each, beside a bandwidth probe.
    @Test func decodeStepProducts() {
        let shapes = [(2048, 2048), (1024, 2048), (1024, 2048), (2048, 2048), (6144, 2048), (6144, 2048), (2048, 6144)]
        let levels = CPUFeatures.host.runnableLevels
        var sets: [CPULevel: [Q8Matrix]] = [:]
        for level in levels {
            KernelDispatch.withLevel(level) {
                var matrices: [Q8Matrix] = []
                for _ in 0..<28 { matrices += shapes.map { Self.patternQ8($0.0, $0.1) } }
                sets[level] = matrices + [Self.patternQ8(151936, 2048)]
            }
        }
        let x = Tensor(shape: [8, 6144]), y = Tensor(shape: [8, 151936])
        for i in 0..<x.count { x[i] = Float(i % 13) - 6 }
        let bytes = Double(sets[levels[0]]!.reduce(0) { $0 + $1.byteCount })
        var best: [String: Double] = [:]
        var bandwidth = 0.0
        for _ in 0..<5 {
            bandwidth = max(bandwidth, MachineProbe.readBandwidth(bytes: 1 << 28))
            for level in levels {
                KernelDispatch.withLevel(level) {
                    for rows in [1, 4, 8] {
                        let start = DispatchTime.now().uptimeNanoseconds
                        for m in sets[level]! {
                            QuantizedGEMM.forward(m, x.data, rows: rows, ldx: 6144, into: y.data, ldy: 151936, bias: nil, accumulate: false)
                        }
                        let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        let key = "\(level) \(rows)"
                        best[key] = min(best[key] ?? .infinity, t)
                    }
                }
            }
        }
        print(String(format: "[bench] read bandwidth (best of 5, interleaved) %.1f GB/s", bandwidth))
        for level in levels {
            for rows in [1, 4, 8] {
                let t = best["\(level) \(rows)"]!
                print(String(format: "[bench] %@ decode-step products, %d row(s): %.1f ms, %.1f GB/s (%.0f%% of the probe)",
                             level.description, rows, t * 1e3, bytes / t / 1e9, 100 * bytes / t / 1e9 / bandwidth))
            }
        }
    }
}
