import ArgumentParser
import Foundation
import Kernels

/// `postlens cpu`: which kernels this machine runs, and which levels it could run (`POSTLENS_ISA`).
struct CPUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu",
        abstract: "Print the CPU, its ISA extensions, the kernel levels it runs and the one in use.",
        discussion: "Set POSTLENS_ISA=portable|avx2|avx512|amx to run a lower level than the best (tests, benchmarks).")

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let cpu = CPUFeatures.host
        let report: [String: Any] = [
            "cpu": cpu.brand, "extensions": cpu.extensionNames, "runnable_levels": cpu.runnableLevels.map(\.description),
            "level": KernelDispatch.level.description, "openblas_core": BLASCore.name,
        ]
        if json {
            writeOut(jsonString(report) + "\n")
        } else {
            writeOut("""
            cpu: \(cpu.brand)
            extensions: \(cpu.extensionNames.joined(separator: " "))
            runnable levels: \(cpu.runnableLevels.map(\.description).joined(separator: " "))
            level in use: \(KernelDispatch.level)
            openblas core: \(BLASCore.name)

            """)
        }
    }
}
