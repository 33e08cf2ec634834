import Foundation
import ArgumentParser
import Kernels

struct PostLens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postlens",
        abstract: "Understand social-media posts with Qwen3-VL on the CPU.",
        subcommands: [ServeCommand.self, AskCommand.self, AnalyzeCommand.self, JobsCommand.self, WorkerCommand.self, DownloadCommand.self, BenchCommand.self, TokenizeCommand.self, InspectCommand.self, CPUCommand.self]
    )
}

/// The entry point: process-wide allocator settings, then ArgumentParser's own `main`.
@main
enum Entry {
    static func main() async {
        // Buffers of 1 MiB and more (weight matrices, activations of long prompts) come straight from
        // mmap and go back to the system when freed. glibc's default threshold grows to 32 MiB after
        // the first large free, after which a freed model's matrices stayed in the heap and a reload
        // (bench's cold-then-warm load, a model swap) raised the resident set by hundreds of MB.
        setMallocMmapThreshold(1 << 20)
        chooseOpenBLASCore()
        await PostLens.main()
    }
}

/// glibc's `mallopt(M_MMAP_THRESHOLD, bytes)`. `malloc.h` is not part of Swift's Glibc module, so the
/// function is looked up at run time (and skipped on a C library without it).
private func setMallocMmapThreshold(_ bytes: Int32) {
    let mMmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in glibc's malloc.h
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    _ = unsafeBitCast(symbol, to: Mallopt.self)(mMmapThreshold, bytes)
}

/// OpenBLAS chose generic kernels for a CPU it does not know (`BLASCore`): start this program again, once,
/// with `OPENBLAS_CORETYPE` naming the right ones. The choice is made when the library loads, so setting
/// the variable now would change nothing; `exec` keeps the process id, arguments and open descriptors.
private func chooseOpenBLASCore() {
    let marker = "POSTLENS_OPENBLAS_RESTARTED"
    guard ProcessInfo.processInfo.environment[marker] == nil, let core = BLASCore.correction() else { return }
    setenv("OPENBLAS_CORETYPE", core, 1)
    setenv(marker, "1", 1)
    let arguments = CommandLine.arguments
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    execv("/proc/self/exe", &argv)
    // exec failed (no /proc): go on with OpenBLAS's own choice.
    unsetenv("OPENBLAS_CORETYPE")
}
