import Foundation
#if POSTLENS_AVX2
import _Builtin_intrinsics.intel
#endif
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
        case .portable: return ("scalar int32", 1)
        case .avx2: return ("vpmaddwd ymm", 16)
        case .avx512: return ("vpdpbusd zmm", 64)
        case .amx: return ("tdpbsud", 16 * 16 * 64)
        }
    }

    /// Int8 operations per second (2 per multiply-add) of `level`'s integer product instruction on all
    /// compute threads, in GOPS (best of 5 runs of ≈ 20 ms).
    public static func integerGOPS(_ level: CPULevel) -> Double {
        let iterations: Int
        switch level {
        case .amx: iterations = 20_000
        case .avx512: iterations = 2_000_000
        default: iterations = 4_000_000
        }
        let perIteration: Double
        switch level {
        case .amx: perIteration = 4 * 16 * 16 * 64
        case .avx512: perIteration = 12 * 64
        case .avx2: perIteration = 12 * 16
        case .portable: perIteration = 0
        }
        guard perIteration > 0 else { return 0 }
        return best { chunk in
            #if arch(x86_64)
            switch level {
            case .amx: return Int(postlens_amx_peak_loop(Int64(iterations)))
            case .avx512: return Int(vnniPeakLoop(iterations, seed: Int32(chunk)))
            default: break
            }
            #endif
            #if POSTLENS_AVX2
            return Int(maddPeakLoop(iterations, seed: Int32(chunk)))
            #else
            return 0
            #endif
        } * 2 * perIteration * Double(iterations) / 1e9
    }

    /// FP32 multiply-adds of the attention kernels at `level` (8-lane FMA at avx2, 16-lane at avx512 and
    /// amx), in GFLOPS on all compute threads.
    public static func fmaGFLOPS(_ level: CPULevel) -> Double {
        let iterations = 2_000_000
        #if arch(x86_64)
        if level >= .avx512 {
            return best { chunk in Int(fmaPeakLoop512(iterations, seed: Float(chunk) * 0.5).bitPattern & 1) }
                * 2 * 12 * 16 * Double(iterations) / 1e9
        }
        #endif
        #if POSTLENS_AVX2
        return best { chunk in Int(fmaPeakLoop256(iterations, seed: Float(chunk) * 0.5).bitPattern & 1) }
            * 2 * 12 * 8 * Double(iterations) / 1e9
        #else
        return 0
        #endif
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

#if POSTLENS_AVX2
/// 12 chains of `vpaddd(vpmaddwd)` (16 multiply-adds each), each madd depending on its chain so that
/// none is hoisted out of the loop.
@inline(never)
func maddPeakLoop(_ iterations: Int, seed: Int32) -> Int32 {
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
    return unsafeBitCast(u, to: SIMD8<Int32>.self).wrappedSum()
}

/// 12 chains of 8-lane `vfmadd`.
@inline(never)
func fmaPeakLoop256(_ iterations: Int, seed: Float) -> Float {
    let a = _mm256_set1_ps(seed), b = _mm256_set1_ps(0.999)
    var s0 = a, s1 = a, s2 = a, s3 = a, s4 = a, s5 = a, s6 = a, s7 = a, s8 = a, s9 = a, s10 = a, s11 = a
    for _ in 0..<iterations {
        s0 = _mm256_fmadd_ps(s0, b, a); s1 = _mm256_fmadd_ps(s1, b, a); s2 = _mm256_fmadd_ps(s2, b, a)
        s3 = _mm256_fmadd_ps(s3, b, a); s4 = _mm256_fmadd_ps(s4, b, a); s5 = _mm256_fmadd_ps(s5, b, a)
        s6 = _mm256_fmadd_ps(s6, b, a); s7 = _mm256_fmadd_ps(s7, b, a); s8 = _mm256_fmadd_ps(s8, b, a)
        s9 = _mm256_fmadd_ps(s9, b, a); s10 = _mm256_fmadd_ps(s10, b, a); s11 = _mm256_fmadd_ps(s11, b, a)
    }
    let t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                          _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)))
    return (t + _mm256_add_ps(_mm256_add_ps(s8, s9), _mm256_add_ps(s10, s11))).sum()
}
#endif
