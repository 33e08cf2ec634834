import Foundation

/// Everything that can go wrong while getting a model. Each message says what happened and what
/// to do next, because these errors end up in front of a person at a terminal.
public enum HubError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What a 404 was about, from the Hub's `X-Error-Code` header when it sends one.
    public enum Missing: Sendable, Equatable {
        case repository
        case revision
        case file(String)
        /// The server did not say whether the repository or the revision is missing.
        case repositoryOrRevision
    }

    case invalidRepoID(String)
    case invalidRevision(String)
    /// Offline mode (`HF_HUB_OFFLINE`) is set and the model is not in the cache.
    case offline(repo: String, revision: String, cacheDirectory: String)
    /// The model is not cached and downloading was not allowed by the caller.
    case notCached(repo: String, revision: String, cacheDirectory: String)
    /// HTTP 401 or 403: missing, wrong or insufficient token (or a gated repo not yet accepted).
    case unauthorized(repo: String, status: Int, message: String?)
    /// HTTP 404.
    case notFound(repo: String, revision: String, missing: Missing)
    /// A downloaded file does not have the size or hash the Hub announced; the file was removed.
    case checksumMismatch(file: String, expected: String, actual: String)
    case insufficientDiskSpace(needed: Int64, available: Int64, path: String)
    /// The Hub could not be reached, or the transfer kept failing after all retries.
    case network(String)
    /// Any other HTTP status.
    case http(status: Int, url: String, message: String?)
    /// The server answered something this client cannot use.
    case invalidResponse(String)
    /// `--model` named a folder that is not a model folder.
    case notAModelFolder(path: String, reason: String)
    case fileSystem(String)

    public var description: String {
        switch self {
        case .invalidRepoID(let id):
            return "'\(id)' is not a valid repository id: expected 'org/name' (letters, digits, '-', '_', '.')."
        case .invalidRevision(let rev):
            return "'\(rev)' is not a valid revision: use a branch or tag name or a 40-character commit hash."
        case .offline(let repo, let revision, let cache):
            return """
                offline mode is on (HF_HUB_OFFLINE) and \(repo) (revision \(revision)) is not in the cache at \(cache).
                To use it without network access, either copy a model folder (config.json, *.safetensors, tokenizer \
                files) to this machine and pass its path with --model /path/to/folder, or copy the cache folder \
                \(RepoID.folderName(repo)) from a machine where `postlens download \(repo)` (or `hf download \(repo)`) \
                ran into \(cache). Unset HF_HUB_OFFLINE to download it.
                """
        case .notCached(let repo, let revision, let cache):
            return "\(repo) (revision \(revision)) is not in the cache at \(cache); run `postlens download \(repo)` first."
        case .unauthorized(let repo, let status, let message):
            let detail = message.map { " (\($0))" } ?? ""
            return """
                access to \(repo) was refused with HTTP \(status)\(detail). If the repository is private or gated, \
                set HF_TOKEN to a token that can read it (create one at https://huggingface.co/settings/tokens, and \
                accept the model's terms on its page if it is gated); if HF_TOKEN is set, check that it is valid. \
                A mistyped repository id gives the same answer: check the spelling.
                """
        case .notFound(let repo, let revision, let missing):
            switch missing {
            case .repository:
                return "repository \(repo) was not found on the Hub: check the id (org/name), or set HF_TOKEN if it is private."
            case .revision:
                return "revision '\(revision)' was not found in \(repo): check the branch, tag or commit name (--revision)."
            case .file(let path):
                return "file \(path) was not found in \(repo) at revision \(revision)."
            case .repositoryOrRevision:
                return "\(repo) at revision '\(revision)' was not found: check the repository id and --revision."
            }
        case .checksumMismatch(let file, let expected, let actual):
            return """
                \(file) is corrupted: expected \(expected), got \(actual). The damaged download was removed; \
                run the command again to fetch it anew (if it keeps happening, a proxy or mirror may be altering files).
                """
        case .insufficientDiskSpace(let needed, let available, let path):
            return """
                not enough free disk space in \(path): the download needs \(ByteCount.format(needed)) but only \
                \(ByteCount.format(available)) is available. Free some space, or point HF_HUB_CACHE (or --dir) \
                at a larger disk.
                """
        case .network(let message):
            return """
                could not reach the Hub: \(message). Check the network (HF_ENDPOINT, proxies) and run the command \
                again: partial files are kept and the download resumes. Without network, set HF_HUB_OFFLINE=1 and \
                use a cached model or a model folder (--model /path/to/folder).
                """
        case .http(let status, let url, let message):
            return "the Hub answered HTTP \(status) for \(url)\(message.map { ": \($0)" } ?? "")."
        case .invalidResponse(let message):
            return "unexpected answer from the Hub: \(message). Check HF_ENDPOINT."
        case .notAModelFolder(let path, let reason):
            return "\(path) is not a model folder: \(reason)."
        case .fileSystem(let message):
            return message
        }
    }
}

extension RepoID {
    /// The cache folder name for a repo id string, or the string itself if it is not a valid id.
    static func folderName(_ repo: String) -> String {
        (try? RepoID(repo))?.cacheFolderName ?? repo
    }
}

/// Human-readable byte counts (decimal units, as download tools usually show).
public enum ByteCount {
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.2f", value) + " " + units[unit]
    }
}
