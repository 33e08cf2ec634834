import Foundation
import ArgumentParser

struct PostLens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postlens",
        abstract: "Understand social-media posts with Qwen3-VL on the CPU.",
        subcommands: [ServeCommand.self, AskCommand.self, AnalyzeCommand.self, JobsCommand.self, WorkerCommand.self, DownloadCommand.self, BenchCommand.self, TokenizeCommand.self, InspectCommand.self]
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
