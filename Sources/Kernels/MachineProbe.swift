import CBLAS
import Foundation

/// Measurements of what the hardware allows, taken in the same run as the engine's timings
/// (`postlens bench`). Lives in Kernels so it is compiled optimized like the kernels it is compared with.
public enum MachineProbe {
    /// Read bandwidth in GB/s: summing a 1 GiB array with all compute threads, four streams each (best of 3).
    public static func readBandwidth(bytes: Int = 1 << 30) -> Double {
        let count = bytes / 4
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        let threads = Parallel.threadCount
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: threads)
        defer { partial.deallocate() }
        var best = 0.0
        for _ in 0..<3 {
            partial.initialize(repeating: 0, count: threads)
            let start = DispatchTime.now()
            Parallel.forRanges(threads) { range in
                for chunk in range {
                    // Four interleaved streams per thread: one sequential stream is limited by the misses
                    // a core keeps in flight, not by the memory (the decode kernel streams four the same way).
                    let lo = count * chunk / threads, hi = count * (chunk + 1) / threads
                    let quarter = (hi - lo) / 4 / 32 * 32
                    var s0 = SIMD16<Float>.zero, s1 = SIMD16<Float>.zero, s2 = SIMD16<Float>.zero, s3 = SIMD16<Float>.zero
                    let base = UnsafeRawPointer(buffer)
                    var i = lo
                    while i + 16 <= lo + quarter {
                        s0 += base.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        s1 += base.loadUnaligned(fromByteOffset: (i + quarter) * 4, as: SIMD16<Float>.self)
                        s2 += base.loadUnaligned(fromByteOffset: (i + 2 * quarter) * 4, as: SIMD16<Float>.self)
                        s3 += base.loadUnaligned(fromByteOffset: (i + 3 * quarter) * 4, as: SIMD16<Float>.self)
                        i += 16
                    }
                    var tail: Float = 0
                    for j in (lo + 4 * quarter)..<hi { tail += buffer[j] }
                    partial[chunk] = (s0 + s1 + s2 + s3).sum() + tail
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            precondition(partial[0] > 0, "bandwidth probe lost its sum")
            best = max(best, Double(count * 4) / seconds / 1e9)
        }
        return best
    }

    /// OpenBLAS sgemm at n³ in GFLOPS (best of 12: on a shared machine a short run is often slowed by
    /// a neighbour, and a low peak would flatter every fraction computed from it).
    public static func sgemmGFLOPS(n: Int = 1024) -> Double {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        var best = 0.0
        for _ in 0..<12 {
            let start = DispatchTime.now()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, c, Int32(n))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            best = max(best, 2 * Double(n * n * n) / seconds / 1e9)
        }
        return best
    }

    /// Peak resident memory of this process (VmHWM) in MB.
    public static func peakRSSMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return (fields.count > 1 ? Double(fields[1]) ?? 0 : 0) / 1024
        }
        return 0
    }
}
