import Foundation

/// Turns a `--model` argument into a model folder.
///
/// `serve`, `ask` and `analyze` accept either a folder (anything with a `config.json`) or a repo id
/// (`org/name`, optionally `org/name@revision`). A repo id is looked up in the hub cache first, so
/// startup needs no network once a model is here; on first use it is downloaded (with progress),
/// unless offline mode is on or the caller does not allow downloads.
public enum ModelLocator {
    /// - Parameters:
    ///   - modelArgument: a folder path or `org/name[@revision]`.
    ///   - download: whether a repo id missing from the cache may be fetched.
    ///   - progress: where download progress goes (only used when a download happens).
    /// - Returns: the model folder (for a repo id, `snapshots/<commit>` in the cache).
    public static func resolve(
        _ modelArgument: String,
        configuration: HubConfiguration = .fromEnvironment(),
        download: Bool = true,
        progress: (any DownloadProgressReporter)? = nil
    ) async throws -> URL {
        let argument = modelArgument.trimmingCharacters(in: .whitespaces)
        let expanded = expandTilde(argument)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: expanded, isDirectory: &isDirectory) {
            let url = URL(fileURLWithPath: expanded, isDirectory: isDirectory.boolValue).standardizedFileURL
            guard isDirectory.boolValue else {
                throw HubError.notAModelFolder(path: url.path, reason: "it is a file; pass the folder that holds config.json and the *.safetensors files")
            }
            guard FileSystem.isRegularFile(url.appendingPathComponent("config.json")) else {
                throw HubError.notAModelFolder(path: url.path, reason: "it has no config.json")
            }
            return url
        }
        if argument.hasPrefix("/") || argument.hasPrefix(".") || argument.hasPrefix("~") || argument.isEmpty {
            throw HubError.notAModelFolder(path: expanded, reason: "no such folder")
        }

        let (repoString, revision) = splitRevision(argument)
        guard let repo = try? RepoID(repoString) else {
            throw HubError.notAModelFolder(
                path: argument,
                reason: "no such folder, and not a Hugging Face repo id either (expected org/name, e.g. Qwen/Qwen3-VL-2B-Instruct)")
        }
        let cache = HubCache(root: configuration.cacheDirectory)
        if let folder = cache.cachedSnapshot(repo, revision: revision), isCompleteModel(folder) {
            return folder
        }
        if configuration.offline {
            throw HubError.offline(repo: repo.description, revision: revision, cacheDirectory: cache.root.path)
        }
        guard download else {
            throw HubError.notCached(repo: repo.description, revision: revision, cacheDirectory: cache.root.path)
        }
        return try await HubClient(configuration: configuration).snapshot(
            repo: repo.description, revision: revision, progress: progress)
    }

    /// `org/name@rev` → (`org/name`, `rev`); no `@` → revision `main`.
    static func splitRevision(_ argument: String) -> (String, String) {
        guard let at = argument.lastIndex(of: "@") else { return (argument, "main") }
        let revision = String(argument[argument.index(after: at)...])
        return (String(argument[..<at]), revision.isEmpty ? "main" : revision)
    }

    static func expandTilde(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
        return home + path.dropFirst(1)
    }

    /// Whether a cached snapshot looks usable as a model: a `config.json`, at least one weights
    /// file, and every shard a `*.safetensors.index.json` names. A snapshot left half-filled by a
    /// tool that links files one by one fails this and is completed by a download.
    public static func isCompleteModel(_ folder: URL) -> Bool {
        guard FileSystem.isRegularFile(folder.appendingPathComponent("config.json")) else { return false }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let weights = names.filter { $0.hasSuffix(".safetensors") }
        guard !weights.isEmpty, weights.allSatisfy({ FileSystem.isRegularFile(folder.appendingPathComponent($0)) }) else {
            return false
        }
        for index in names where index.hasSuffix(".safetensors.index.json") {
            guard let data = try? Data(contentsOf: folder.appendingPathComponent(index)),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = json["weight_map"] as? [String: String]
            else { return false }
            for shard in Set(map.values) where !FileSystem.isRegularFile(folder.appendingPathComponent(shard)) {
                return false
            }
        }
        return true
    }
}
