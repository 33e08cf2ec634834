import ArgumentParser
import Engine
import Foundation
import Hub
import Kernels
import Qwen3VL

/// How the model runs, the same for every model-running command (`serve`, `ask`, `analyze`, `worker`, `bench`):
/// the runtime weight format, the compute threads and the image-token budget per image. One struct, so that the
/// flags, their defaults (q8, all cores, 1,280 tokens) and their help are the same everywhere.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .long, help: "Runtime weight format: q8 (8-bit blocks, ≈1.1 bytes/weight), q4, or f32 (the reference, 4 bytes/weight).")
    var format: WeightFormat = .q8

    @Option(name: .long, help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("max-image-tokens"),
            help: "Most image tokens per image (1 token = 32x32 pixels); larger images are scaled down to fit.")
    var maxImageTokens = ImageTokenBudget.defaultMaximum

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard maxImageTokens >= ImageTokenBudget.minimum else {
            throw ValidationError("--max-image-tokens must be at least \(ImageTokenBudget.minimum)")
        }
    }

    /// The pixel budget per image that `--max-image-tokens` gives.
    var maxPixels: Int { ImageTokenBudget.pixels(maxImageTokens) }

    /// Sets the compute thread count (all cores without `--threads`).
    func applyThreads() { Parallel.setThreadCount(threads ?? Parallel.threadCount) }

    /// Loads the model in `folder` in the chosen format: the one place the CLI makes an engine.
    func loadEngine(_ folder: URL, contextLimit: Int? = nil, kvCacheBudgetBytes: Int? = nil) throws -> InferenceEngine {
        try InferenceEngine(directory: folder, contextLimit: contextLimit, format: format, kvCacheBudgetBytes: kvCacheBudgetBytes)
    }
}

/// `--model` and the runtime options: what every command that answers with the model takes.
struct ModelOptions: ParsableArguments {
    static let modelHelp: ArgumentHelp = "Model folder, a Hugging Face repo id such as Qwen/Qwen3-VL-2B-Instruct, or an alias such as 8b-thinking (downloaded on first use)."

    @Option(name: .long, help: modelHelp)
    var model: String

    @OptionGroup var runtime: RuntimeOptions

    /// Applies the thread count and returns the model folder, downloading a repo id on first use with a progress bar.
    func prepare() async throws -> URL {
        runtime.applyThreads()
        return try await resolveModelFolder(model)
    }

    /// `prepare`, then the engine.
    func loadEngine(contextLimit: Int? = nil, kvCacheBudgetBytes: Int? = nil) async throws -> InferenceEngine {
        try runtime.loadEngine(try await prepare(), contextLimit: contextLimit, kvCacheBudgetBytes: kvCacheBudgetBytes)
    }
}

/// A `--model` argument as a folder: a folder path is used as is; a repo id (`org/name[@revision]`) or an alias of a
/// Qwen3-VL model (`4b-thinking`, unless a folder of that name exists) is found in the Hugging Face cache or, with
/// `download`, fetched on first use (progress to `progress`, a bar on stderr by default) unless `HF_HUB_OFFLINE=1`.
func resolveModelFolder(_ argument: String, download: Bool = true,
                        progress: any DownloadProgressReporter = TerminalDownloadProgress()) async throws -> URL {
    var argument = argument
    if !FileManager.default.fileExists(atPath: (argument as NSString).expandingTildeInPath), let member = Qwen3VLFamily.member(named: argument) {
        argument = member.repo
    }
    return try await ModelLocator.resolve(argument, configuration: .fromEnvironment(), download: download, progress: progress)
}

extension WeightFormat: ExpressibleByArgument {}
