import CKernels
import Foundation
import Logging

/// The instruction-set levels the kernels are written for, lowest first. A level includes everything
/// below it: at `.avx512` the products run AVX-512 VNNI kernels and everything without an AVX-512
/// kernel (norms, activations) runs its AVX2 code.
public enum CPULevel: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    /// Plain Swift SIMD, any CPU (`POSTLENS_PORTABLE=1` builds, and non-x86 machines).
    case portable
    /// AVX2 + FMA (Haswell, Zen 1+): `vpmaddwd` integer products on 16-bit lanes, 8-lane FMA tiles.
    case avx2
    /// AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Sapphire Rapids, Zen 4+): `vpdpbusd` int8 products.
    case avx512
    /// AMX-INT8 tiles (Sapphire Rapids and later Xeons) for the many-rows products, AVX-512 for the rest.
    case amx

    public static func < (a: CPULevel, b: CPULevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        case .amx: return "amx"
        }
    }

    public init?(name: String) {
        guard let level = CPULevel.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = level
    }
}

/// What this CPU offers, read once with cpuid/xgetbv (C: `Sources/CKernels/cpu_features.c`).
public struct CPUFeatures: Sendable {
    public let avx2: Bool
    public let avx512: Bool
    public let avx512BF16: Bool
    public let avxVNNI: Bool
    public let amxInt8: Bool
    public let amxBF16: Bool
    public let brand: String

    public static let host: CPUFeatures = {
        let bits = postlens_cpu_features()
        func has(_ flag: UInt32) -> Bool { bits & flag != 0 }
        var name = [CChar](repeating: 0, count: 64)
        postlens_cpu_brand(&name)
        let brand = String(cString: name).trimmingCharacters(in: .whitespaces)
        let avx2 = has(UInt32(POSTLENS_CPU_AVX2)), avx512 = has(UInt32(POSTLENS_CPU_AVX512))
        let bf16 = has(UInt32(POSTLENS_CPU_AVX512_BF16)), vnni = has(UInt32(POSTLENS_CPU_AVX_VNNI))
        let amxInt8 = has(UInt32(POSTLENS_CPU_AMX_INT8)), amxBF16 = has(UInt32(POSTLENS_CPU_AMX_BF16))
        return CPUFeatures(avx2: avx2, avx512: avx512, avx512BF16: bf16, avxVNNI: vnni, amxInt8: amxInt8,
                           amxBF16: amxBF16, brand: brand)
    }()

    /// The ISA extensions found, as `lscpu` would name them (for `bench`, `/health`).
    public var extensionNames: [String] {
        var names: [String] = []
        if avx2 { names.append("avx2") }
        if avx512 { names += ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"] }
        if avx512BF16 { names.append("avx512_bf16") }
        if avxVNNI { names.append("avx_vnni") }
        if amxInt8 { names += ["amx_tile", "amx_int8"] }
        if amxBF16 { names.append("amx_bf16") }
        return names
    }

    /// Levels this binary can run here, lowest first. The base level is fixed at build time: AVX2 (the
    /// default build, whose compute modules are compiled for Haswell) or portable (`POSTLENS_PORTABLE=1`).
    /// The AVX-512 and AMX kernels are separate modules built for their own CPUs, present in every x86-64
    /// build and run only where the CPU has them.
    public var runnableLevels: [CPULevel] {
        #if POSTLENS_AVX2
        var levels: [CPULevel] = [.avx2]
        #else
        var levels: [CPULevel] = [.portable]
        #endif
        #if arch(x86_64)
        if avx512 { levels.append(.avx512) }
        if amxInt8 { levels.append(.amx) }
        #endif
        return levels
    }
}

/// The one place that decides which kernels run: the best level the host can run, or the one named by
/// `POSTLENS_ISA` (`portable|avx2|avx512|amx`) to test or bench a lower level on a better machine.
/// Decided once, before the first product; callers never branch on the CPU themselves.
public enum KernelDispatch {
    public enum Failure: Error, CustomStringConvertible {
        case unknownLevel(String)
        case unavailable(CPULevel, runnable: [CPULevel], reason: String)

        public var description: String {
            switch self {
            case .unknownLevel(let name):
                return "POSTLENS_ISA=\(name) is not a level; use one of \(CPULevel.allCases.map(\.description).joined(separator: ", "))"
            case .unavailable(let level, let runnable, let reason):
                return "POSTLENS_ISA=\(level) cannot run here (\(reason)); this machine runs \(runnable.map(\.description).joined(separator: ", "))"
            }
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var chosen: CPULevel?
    nonisolated(unsafe) private static var amxPermission: Int32?
    /// A level forced for the current task (tests and benchmarks compare levels in one process while
    /// other tests run in parallel).
    @TaskLocal private static var override: CPULevel?

    /// The level in use. The first read decides it (environment, then the best runnable level); a
    /// `POSTLENS_ISA` the host cannot run stops the process with a message that says why — running a
    /// different level than the one asked for would make a benchmark or test lie. Drivers read it once
    /// per product, on the calling thread.
    public static var level: CPULevel {
        if let override { return override }
        lock.lock()
        defer { lock.unlock() }
        if let chosen { return chosen }
        do {
            let level = try resolve(ProcessInfo.processInfo.environment["POSTLENS_ISA"])
            chosen = level
            return level
        } catch {
            // The command line checks POSTLENS_ISA at start-up and says so itself; a library user gets it logged.
            Logger(label: "postlens.kernels").critical("\(error)")
            exit(2)
        }
    }

    /// The level `POSTLENS_ISA` (nil or empty: the best) selects on this host, or why it cannot run.
    public static func resolve(_ requested: String?) throws -> CPULevel {
        let runnable = CPUFeatures.host.runnableLevels
        guard let name = requested, !name.isEmpty else {
            var best = runnable.last ?? .portable
            if best == .amx, requestAMX() != 0 { best = .avx512 }
            return best
        }
        guard let level = CPULevel(name: name) else { throw Failure.unknownLevel(name) }
        guard runnable.contains(level) else {
            throw Failure.unavailable(level, runnable: runnable, reason: level == .avx2
                ? "this build has no AVX2 kernels or the CPU lacks AVX2" : "the CPU or OS lacks it")
        }
        if level == .amx {
            let error = requestAMX()
            guard error == 0 else {
                throw Failure.unavailable(level, runnable: runnable, reason: "Linux refused AMX tile data (errno \(error))")
            }
        }
        return level
    }

    /// Runs `body` with `level` active for the current task only. Weights keep the layout they were made
    /// with (`Q8Layout.preferred` inside `body` is the level's); a `.quads` matrix below avx512 runs the
    /// portable twin.
    public static func withLevel<T>(_ level: CPULevel, _ body: () throws -> T) rethrows -> T {
        precondition(CPUFeatures.host.runnableLevels.contains(level), "level \(level) cannot run on this host")
        if level == .amx { precondition(requestAMX() == 0, "AMX permission refused") }
        return try $override.withValue(level, operation: body)
    }

    /// `arch_prctl(ARCH_REQ_XCOMP_PERM)` once per process; 0 when granted.
    private static func requestAMX() -> Int32 {
        amxLock.lock()
        defer { amxLock.unlock() }
        if let amxPermission { return amxPermission }
        let result = postlens_request_amx_permission()
        amxPermission = result
        return result
    }
    private static let amxLock = NSLock()
}
