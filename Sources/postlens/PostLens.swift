import ArgumentParser

@main
struct PostLens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postlens",
        abstract: "Understand social-media posts with Qwen3-VL on the CPU.",
        subcommands: [ServeCommand.self, AskCommand.self, AnalyzeCommand.self, DownloadCommand.self, BenchCommand.self, TokenizeCommand.self, InspectCommand.self]
    )
}
