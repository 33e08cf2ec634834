import ArgumentParser
import Foundation
import Hub
import Qwen3VL

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
            The Qwen3-VL dense models can be named by alias: 2b, 4b, 8b, 2b-thinking, 4b-thinking, 8b-thinking \
            (or qwen3-vl-4b-thinking, ...); --list shows them.
            """
    )

    @Argument(help: "Repository id on the Hub (org/name), or an alias such as 4b-thinking.")
    var repo: String = "Qwen/Qwen3-VL-2B-Instruct"

    @Flag(help: "List the Qwen3-VL models PostLens runs (repo id, alias, download size) and exit.")
    var list = false

    @Option(help: "Branch, tag or commit hash to download.")
    var revision: String = "main"

    @Option(help: ArgumentHelp("Hub cache folder to use instead of the default (same as setting HF_HUB_CACHE).", valueName: "dir"))
    var dir: String?

    func run() async throws {
        if list {
            for m in Qwen3VLFamily.members {
                print("\(m.repo.padding(toLength: 28, withPad: " ", startingAt: 0)) \(m.alias.padding(toLength: 22, withPad: " ", startingAt: 0)) ≈ \(m.approximateGB) GB")
            }
            return
        }
        let repo = Qwen3VLFamily.member(named: self.repo)?.repo ?? self.repo
        if Qwen3VLFamily.member(named: repo) == nil {
            FileHandle.standardError.write(Data("note: \(repo) is not one of the Qwen3-VL models PostLens knows (postlens download --list); it runs only if it is a dense Qwen3-VL checkpoint\n".utf8))
        }
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
