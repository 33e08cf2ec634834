import Foundation
import Testing
@testable import Kernels

/// `POSTLENS_ISA` and the level choice: a level the host cannot run is refused with a reason (never silently
/// replaced), unknown names are refused, and no request means the best runnable level.
@Suite struct CPULevelTests {
    @Test func bestLevelWhenNothingIsAsked() throws {
        let best = try KernelDispatch.resolve(nil)
        let runnable = CPUFeatures.host.runnableLevels
        // AMX needs Linux's permission as well; without it the best is avx512.
        #expect(best == runnable.last || (runnable.last == .amx && best == .avx512))
        #expect(try KernelDispatch.resolve("") == best)
    }

    @Test func everyRunnableLevelCanBeForced() throws {
        for level in CPUFeatures.host.runnableLevels {
            #expect(try KernelDispatch.resolve(level.description) == level)
            #expect(try KernelDispatch.resolve(level.description.uppercased()) == level)
        }
    }

    @Test func levelsTheHostLacksAreRefusedWithTheReason() {
        for level in CPULevel.allCases where !CPUFeatures.host.runnableLevels.contains(level) {
            do {
                _ = try KernelDispatch.resolve(level.description)
                Issue.record("\(level) accepted on a host that cannot run it")
            } catch {
                #expect("\(error)".contains("cannot run here"), "\(error)")
            }
        }
        #expect(throws: KernelDispatch.Failure.self) { try KernelDispatch.resolve("avx9000") }
    }

    /// Features imply their prerequisites, as the C detection builds them.
    @Test func featuresAreConsistent() {
        let cpu = CPUFeatures.host
        if cpu.avx512 { #expect(cpu.avx2) }
        if cpu.amxInt8 { #expect(cpu.avx512) }
        if cpu.avx512BF16 { #expect(cpu.avx512) }
        #expect(cpu.runnableLevels == cpu.runnableLevels.sorted())
        // The level a task forces is the one kernels read, and it ends with the task.
        let outside = KernelDispatch.level
        for level in cpu.runnableLevels {
            KernelDispatch.withLevel(level) { #expect(KernelDispatch.level == level) }
        }
        #expect(KernelDispatch.level == outside)
    }

    /// OpenBLAS's generic kernel sets are corrected to the CPU's best, a recognised set or the user's own
    /// `OPENBLAS_CORETYPE` is left alone.
    @Test func openBLASCoreCorrection() {
        let avx512BF16 = CPUFeatures(avx2: true, avx512: true, avx512BF16: true, avxVNNI: true, amxInt8: true, amxBF16: true, brand: "x")
        let avx512 = CPUFeatures(avx2: true, avx512: true, avx512BF16: false, avxVNNI: false, amxInt8: false, amxBF16: false, brand: "x")
        let avx2 = CPUFeatures(avx2: true, avx512: false, avx512BF16: false, avxVNNI: false, amxInt8: false, amxBF16: false, brand: "x")
        #expect(BLASCore.correction(features: avx512BF16, environment: [:], current: "Prescott") == "Cooperlake")
        #expect(BLASCore.correction(features: avx512, environment: [:], current: "Nehalem") == "SkylakeX")
        #expect(BLASCore.correction(features: avx2, environment: [:], current: "Prescott") == "Haswell")
        #expect(BLASCore.correction(features: avx512BF16, environment: [:], current: "SapphireRapids") == nil)
        #expect(BLASCore.correction(features: avx512BF16, environment: ["OPENBLAS_CORETYPE": "Haswell"], current: "Prescott") == nil)
    }
}
