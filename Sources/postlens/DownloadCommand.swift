import ArgumentParser
import Foundation
import Hub

/// `postlens download [REPO] [--revision REV] [--dir DIR]`: fetches a model from the Hugging Face
/// Hub into the shared hub cache (the layout `huggingface_hub` uses) and prints the snapshot folder
/// on standard output, so scripts can do `MODEL=$(postlens download)`. Progress goes to stderr.
struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a model from the Hugging Face Hub into the local cache.",
        discussion: """
            Files go to the standard Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else \
            ~/.cache/huggingface/hub), so models fetched by other tools are reused and ours are usable by them. \
            Interrupted downloads resume; every LFS file is checked against its sha256.
            Environment: HF_ENDPOINT (mirror or proxy of the Hub), HF_TOKEN (gated or private repositories), \
            HF_HOME / HF_HUB_CACHE (cache location), HF_HUB_OFFLINE=1 (no network: only report the cached copy).
            """
    )

    @Argument(help: "Repository id on the Hub (org/name).")
    var repo: String = "Qwen/Qwen3-VL-2B-Instruct"

    @Option(help: "Branch, tag or commit hash to download.")
    var revision: String = "main"

    @Option(help: ArgumentHelp("Hub cache folder to use instead of the default (same as setting HF_HUB_CACHE).", valueName: "dir"))
    var dir: String?

    func run() async throws {
        var configuration = HubConfiguration.fromEnvironment()
        if let dir {
            configuration.cacheDirectory = URL(fileURLWithPath: (dir as NSString).expandingTildeInPath, isDirectory: true)
        }
        let client = HubClient(configuration: configuration)
        do {
            let folder = try await client.snapshot(repo: repo, revision: revision, progress: TerminalDownloadProgress())
            print(folder.path)
        } catch let error as HubError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
    }
}
