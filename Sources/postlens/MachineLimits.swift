import CBLAS
import Foundation
import Imaging
import Kernels

/// Measurements of what the hardware allows, taken in the same run as the engine's timings.
enum MachineLimits {
    /// Read bandwidth in GB/s: summing a 1 GiB array with all compute threads (best of 3).
    static func readBandwidth() -> Double {
        let count = 1 << 28  // 1 GiB of floats
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        var best = 0.0
        for _ in 0..<3 {
            let start = Date()
            let partial = UnsafeMutablePointer<Float>.allocate(capacity: Parallel.threadCount)
            partial.initialize(repeating: 0, count: Parallel.threadCount)
            Parallel.forRanges(Parallel.threadCount) { range in
                for chunk in range {
                    let lo = count * chunk / Parallel.threadCount, hi = count * (chunk + 1) / Parallel.threadCount
                    var s0: SIMD16<Float> = .zero, s1: SIMD16<Float> = .zero
                    var i = lo
                    let base = UnsafeRawPointer(buffer)
                    while i + 32 <= hi {
                        s0 += base.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        s1 += base.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
                        i += 32
                    }
                    partial[chunk] = (s0 + s1).sum()
                }
            }
            let seconds = Date().timeIntervalSince(start)
            if partial[0] < 0 { print("") }  // keep the sums alive
            partial.deallocate()
            best = max(best, Double(count * 4) / seconds / 1e9)
        }
        return best
    }

    /// OpenBLAS sgemm at 1024³ in GFLOPS (best of 5).
    static func sgemmGFLOPS() -> Double {
        let n = 1024
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        var best = 0.0
        for _ in 0..<5 {
            let start = Date()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, c, Int32(n))
            best = max(best, 2 * Double(n * n * n) / Date().timeIntervalSince(start) / 1e9)
        }
        return best
    }

    /// Peak resident memory of this process (VmHWM) in MB.
    static func peakRSSMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }

    /// A synthetic poster-like image: gradients, blocks and stripes (content does not affect speed).
    static func testImage(side: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side {
                let i = (y * side + x) * 3
                pixels[i] = UInt8((x * 255) / max(1, side - 1))
                pixels[i + 1] = UInt8((y * 255) / max(1, side - 1))
                pixels[i + 2] = ((x / 16 + y / 16) % 2 == 0) ? 230 : 20
            }
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }
}
