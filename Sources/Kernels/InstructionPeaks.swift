import Foundation
import KernelsSIMD
#if arch(x86_64)
import CKernels
import KernelsAVX512
#endif

/// The compute limits of the active level's kernels, measured by running the instructions they are made
/// of (not OpenBLAS, whose kernel choice depends on whether it knows the CPU): `postlens bench` reports
/// every product beside the limit of the instruction it uses.
public enum InstructionPeaks {
    /// The integer multiply-add instruction of the quantized products at `level`, and how many
    /// multiply-adds one instruction does.
    public static func integerInstruction(_ level: CPULevel) -> (name: String, multiplyAdds: Int) {
        switch level {
        case .portable: return ("portable dotPairs (vectorized by the compiler)", 16)
        case .avx2: return ("vpmaddwd ymm", 16)
        case .avx512: return ("vpdpbusd zmm", 64)
        case .amx: return ("tdpbsud", 16 * 16 * 64)
        }
    }

    /// Int8 operations per second (2 per multiply-add) of `level`'s integer product instruction on all
    /// compute threads, in GOPS (best of 5 runs of ≈ 40 ms: with runs of 7 ms a thread of the process waking at
    /// the wrong moment halved the figure in some `postlens bench` runs on a 2-core machine).
    public static func integerGOPS(_ level: CPULevel) -> Double {
        let iterations: Int
        switch level {
        case .amx: iterations = 120_000
        case .avx512: iterations = 12_000_000
        default: iterations = 24_000_000
        }
        let perIteration: Double
        switch level {
        case .amx: perIteration = 4 * 16 * 16 * 64
        case .avx512: perIteration = 12 * 64
        case .avx2: perIteration = 12 * 16
        case .portable: perIteration = 12 * 16
        }
        return best { chunk in
            #if arch(x86_64)
            switch level {
            case .amx: return Int(postlens_amx_peak_loop(Int64(iterations)))
            case .avx512: return Int(vnniPeakLoop(iterations, seed: Int32(chunk)))
            default: break
            }
            #endif
            return Int(maddPeakLoop(iterations, seed: Int32(chunk)))
        } * 2 * perIteration * Double(iterations) / 1e9
    }

    /// FP32 multiply-adds of the attention kernels at `level` (8-lane FMA at avx2, 16-lane at avx512 and
    /// amx), in GFLOPS on all compute threads.
    public static func fmaGFLOPS(_ level: CPULevel) -> Double {
        let iterations = 12_000_000
        #if arch(x86_64)
        if level >= .avx512 {
            return best { chunk in Int(fmaPeakLoop512(iterations, seed: Float(chunk) * 0.5).bitPattern & 1) }
                * 2 * 12 * 16 * Double(iterations) / 1e9
        }
        #endif
        return best { chunk in Int(fmaPeakLoop256(iterations, seed: Float(chunk) * 0.5).bitPattern & 1) }
            * 2 * 12 * 8 * Double(iterations) / 1e9
    }

    /// Runs `loop` on every compute thread at once, 5 times; returns the best rate (runs per second summed
    /// over threads). `loop` returns a value so the work cannot be dropped.
    private static func best(_ loop: @escaping (Int) -> Int) -> Double {
        let threads = Parallel.threadCount
        var best = 0.0
        var sink = 0
        for _ in 0..<5 {
            let results = UnsafeMutablePointer<Int>.allocate(capacity: threads)
            let start = DispatchTime.now().uptimeNanoseconds
            Parallel.forRanges(threads) { range in for chunk in range { results[chunk] = loop(chunk) } }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            for i in 0..<threads { sink &+= results[i] }
            results.deallocate()
            best = max(best, Double(threads) / seconds)
        }
        if sink == 42 { print("", terminator: "") }  // keeps `sink` alive
        return best
    }
}
