import CBLAS
import Foundation

/// OpenBLAS picks its kernels once, when the library loads (before `main`), from the CPU it recognises.
/// Debian 12's 0.3.21 does not know CPUs newer than itself (an Emerald Rapids Xeon came up as
/// 'Prescott', generic SSE3: sgemm 35 GFLOPS instead of 196). The F32 format and the portable products
/// use OpenBLAS, so a generic choice on a CPU with AVX2 or AVX-512 is corrected by restarting the
/// process once with `OPENBLAS_CORETYPE` set (`PostLens.main`); the quantized products of the AVX2,
/// AVX-512 and AMX levels never call it.
public enum BLASCore {
    /// The kernel set OpenBLAS is using ("Haswell", "SkylakeX", "Cooperlake", "Zen", "Prescott"…).
    public static var name: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// Generic x86 kernel sets: OpenBLAS's fallbacks for CPUs it does not recognise.
    static let generic: Set<String> = ["Prescott", "Katmai", "Coppermine", "Northwood", "Banias", "Core2", "Penryn",
                                       "Dunnington", "Nehalem", "Atom", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona",
                                       "Nano", "unknown"]

    /// The `OPENBLAS_CORETYPE` that suits this CPU when OpenBLAS chose a generic set, or nil when its
    /// own choice stands (or the variable is already set: the user's choice wins).
    public static func correction(features: CPUFeatures = .host,
                                  environment: [String: String] = ProcessInfo.processInfo.environment,
                                  current: String = BLASCore.name) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, generic.contains(current) else { return nil }
        if features.avx512 { return features.avx512BF16 ? "Cooperlake" : "SkylakeX" }
        if features.avx2 { return "Haswell" }
        return nil
    }
}
