import Foundation

/// Where and how to reach the Hugging Face Hub, and where models are cached.
///
/// The defaults mirror `huggingface_hub` so that a model fetched by Python tools (or by
/// `hf download`) is found by PostLens, and the other way round: the same environment
/// variables select the same folders.
public struct HubConfiguration: Sendable {
    /// Base URL of the Hub, without a trailing slash (`HF_ENDPOINT`; mirrors and corporate
    /// proxies such as hf-mirror expose the same API under another host).
    public var endpoint: String
    /// Access token for gated or private repositories (`HF_TOKEN`), sent as a Bearer token.
    public var token: String?
    /// Root of the hub cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`);
    /// it holds one `models--org--name` folder per repository.
    public var cacheDirectory: URL
    /// When set (`HF_HUB_OFFLINE=1`) nothing is fetched: models come from the cache or a folder.
    public var offline: Bool
    /// How many times one request is tried again after a transient failure (connection lost,
    /// timeout, HTTP 429 or 5xx). A retry of a file download resumes from the bytes already on disk.
    public var maxRetries: Int = 5
    /// First delay between retries; it doubles each time (with jitter), up to `maxBackoff`.
    public var initialBackoff: Duration = .milliseconds(500)
    /// Upper bound of the delay between two retries.
    public var maxBackoff: Duration = .seconds(30)
    /// Time allowed to open a connection.
    public var connectTimeout: Duration = .seconds(15)
    /// Longest silence tolerated while a response is read (an idle timeout, not a total one, so
    /// a multi-gigabyte file may take as long as it needs while bytes keep arriving).
    public var readTimeout: Duration = .seconds(60)
    /// Free space to keep on the cache's file system in addition to what the download needs, so
    /// that a download never fills the disk to the last byte.
    public var diskSpaceReserve: Int64 = 64 * 1024 * 1024

    /// The public Hub.
    public static let defaultEndpoint = "https://huggingface.co"

    public init(
        endpoint: String = HubConfiguration.defaultEndpoint,
        token: String? = nil,
        cacheDirectory: URL,
        offline: Bool = false
    ) {
        var endpoint = endpoint.trimmingCharacters(in: .whitespaces)
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint.isEmpty ? HubConfiguration.defaultEndpoint : endpoint
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
        self.cacheDirectory = cacheDirectory
        self.offline = offline
    }

    /// Reads the same variables as `huggingface_hub`:
    /// `HF_ENDPOINT`; `HF_TOKEN` (else the legacy `HUGGING_FACE_HUB_TOKEN`, else the token file
    /// that `hf auth login` writes at `HF_TOKEN_PATH` or `HF_HOME/token`); `HF_HUB_CACHE` (else the
    /// legacy `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, with `HF_HOME` defaulting to
    /// `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`); and `HF_HUB_OFFLINE`
    /// (`1`, `true`, `yes` or `on`, in any case).
    public static func fromEnvironment(
        _ env: [String: String] = ProcessInfo.processInfo.environment
    ) -> HubConfiguration {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            return v
        }
        let home = value("HOME") ?? FileManager.default.homeDirectoryForCurrentUser.path
        func expand(_ path: String) -> String {
            if path == "~" { return home }
            if path.hasPrefix("~/") { return home + path.dropFirst(1) }
            return path
        }
        let xdgCache = value("XDG_CACHE_HOME").map(expand) ?? home + "/.cache"
        let hfHome = value("HF_HOME").map(expand) ?? xdgCache + "/huggingface"
        let hubCache = (value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE")).map(expand) ?? hfHome + "/hub"

        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let tokenPath = value("HF_TOKEN_PATH").map(expand) ?? hfHome + "/token"
            if let text = try? String(contentsOfFile: tokenPath, encoding: .utf8) {
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                token = trimmed.isEmpty ? nil : trimmed
            }
        }
        let offline = value("HF_HUB_OFFLINE").map(isTrue) ?? false
        return HubConfiguration(
            endpoint: value("HF_ENDPOINT") ?? defaultEndpoint,
            token: token,
            cacheDirectory: URL(fileURLWithPath: hubCache, isDirectory: true),
            offline: offline
        )
    }

    /// `huggingface_hub` treats these spellings as true.
    static func isTrue(_ value: String) -> Bool {
        ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }
}
