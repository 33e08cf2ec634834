import Crypto
import Foundation
import Testing
@testable import Hub

/// End-to-end tests against `fake_hub.py`, a loopback stand-in for the Hub's HTTP API.
/// Each test starts its own server and cache folder, and stops the server when it ends.
@Suite("Hub downloads")
struct HubDownloadTests {
    /// The git blob sha1 huggingface_hub names a regular file's blob after.
    static func gitSHA1(_ data: Data) -> String {
        var sha1 = Insecure.SHA1()
        sha1.update(data: Data("blob \(data.count)\0".utf8))
        sha1.update(data: data)
        return sha1.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    func repoFolder(_ cache: URL) -> URL { cache.appendingPathComponent("models--test-org--tiny-model") }

    /// Where the big file is written while it downloads; the fake hub watches it to drop the
    /// connection only once the client has consumed the bytes sent (see fake_hub.py).
    func partialPath(_ cache: URL, _ fixture: Fixture) -> String {
        repoFolder(cache).appendingPathComponent("blobs/\(Self.sha256(fixture.files[Fixture.bigFile]!)).incomplete").path
    }

    @Test("full download writes the huggingface_hub cache layout", arguments: [false, true])
    func fullDownload(redirectLFS: Bool) async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url, options: redirectLFS ? ["--redirect-lfs"] : [])
        defer { hub.stop() }
        let cache = tmp.sub("cache")
        let reporter = RecordedProgress()
        let client = HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: cache))

        let folder = try await client.snapshot(repo: Fixture.repo, progress: reporter)

        let repo = repoFolder(cache)
        let commit = try String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8)
        #expect(PathRules.isCommitHash(commit))
        #expect(folder.standardizedFileURL == repo.appendingPathComponent("snapshots/\(commit)").standardizedFileURL)
        #expect(try readTree(folder) == fixture.files)

        // Relative links into blobs/, named by sha256 (LFS) or git sha1 (regular files).
        for (path, data) in fixture.files {
            let link = try FileManager.default.destinationOfSymbolicLink(atPath: folder.appendingPathComponent(path).path)
            let depth = path.split(separator: "/").count - 1
            let etag = path == Fixture.bigFile ? Self.sha256(data) : Self.gitSHA1(data)
            #expect(link == String(repeating: "../", count: depth + 2) + "blobs/" + etag)
        }
        let blobs = try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path)
        #expect(!blobs.contains { $0.hasSuffix(".incomplete") })
        #expect(blobs.count == fixture.files.count)

        // Progress: started with every file and byte, rising byte counts up to the total, then finished.
        let events = reporter.events
        let total = fixture.files.values.reduce(0) { $0 + $1.count }
        #expect(events.first == "started \(Fixture.repo) \(fixture.files.count) \(total) 0")
        let counts = events.filter { $0.hasPrefix("progressed ") }.compactMap { Int($0.split(separator: " ")[1]) }
        #expect(!counts.isEmpty && counts == counts.sorted() && counts.last == total, "\(counts)")
        #expect(events.last == "finished \(total)")

        // A second run finds everything cached: only the file list is fetched.
        let before = try hub.fileRequests().count
        let again = try await client.snapshot(repo: Fixture.repo)
        #expect(again == folder)
        #expect(try hub.fileRequests().count == before)
    }

    @Test("a dropped connection leaves a partial file that the next run resumes")
    func resumeAfterDrop() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let dropAfter = Fixture.bigSize * 6 / 10
        let cache = tmp.sub("cache")
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url,
                              options: ["--drop-after", "\(dropAfter)", "--drop-wait-for", partialPath(cache, fixture)])
        defer { hub.stop() }
        var configuration = testConfiguration(endpoint: hub.endpoint, cache: cache)
        configuration.maxRetries = 0

        await #expect {
            _ = try await HubClient(configuration: configuration).snapshot(repo: Fixture.repo)
        } throws: { error in
            guard case HubError.network = error else { return false }
            return true
        }
        let sha = Self.sha256(fixture.files[Fixture.bigFile]!)
        let partial = repoFolder(cache).appendingPathComponent("blobs/\(sha).incomplete")
        let partialSize = FileSystem.fileSize(partial) ?? 0
        #expect(partialSize > 0)
        #expect(!FileManager.default.fileExists(atPath: repoFolder(cache).appendingPathComponent("snapshots").path))

        let folder = try await HubClient(configuration: configuration).snapshot(repo: Fixture.repo)
        #expect(try readTree(folder) == fixture.files)

        let served = try hub.stats().bytes_by_path[Fixture.bigFile] ?? 0
        let fetchedTwice = served - Fixture.bigSize
        #expect(fetchedTwice >= 0)
        #expect(Double(fetchedTwice) < 0.1 * Double(Fixture.bigSize), "fetched \(fetchedTwice) bytes twice")
        let last = try #require(try hub.fileRequests().last { $0.path == Fixture.bigFile })
        #expect(last.range == "bytes=\(partialSize)-")
        #expect(last.status == 206)
    }

    @Test("transient failures are retried with backoff within one run")
    func retries() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url,
                              options: ["--drop-after", "\(Fixture.bigSize / 3)", "--fail-first", "2",
                                        "--drop-wait-for", partialPath(tmp.sub("cache"), fixture)])
        defer { hub.stop() }
        let reporter = RecordedProgress()
        let folder = try await HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("cache")))
            .snapshot(repo: Fixture.repo, progress: reporter)
        #expect(try readTree(folder) == fixture.files)
        let stats = try hub.stats()
        #expect(stats.requests.filter { $0.status == 503 }.count == 2)
        let served = stats.bytes_by_path[Fixture.bigFile] ?? 0  // resumed: (almost) nothing fetched twice
        #expect(served >= Fixture.bigSize && Double(served) < 1.1 * Double(Fixture.bigSize),
                "served \(served) bytes: \(stats.requests.filter { $0.path == Fixture.bigFile }.map { "\($0.status) \($0.range ?? "-") \($0.bytes)" })")
        #expect(reporter.events.contains { $0.hasPrefix("note ") && $0.contains("retrying") }, "\(reporter.events)")
    }

    @Test("a server that ignores Range gets the file restarted, and the result is still right")
    func serverIgnoresRange() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url,
                              options: ["--drop-after", "\(Fixture.bigSize / 2)", "--ignore-range"])
        defer { hub.stop() }
        let folder = try await HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("cache")))
            .snapshot(repo: Fixture.repo)
        #expect(try readTree(folder) == fixture.files)
        let big = try hub.fileRequests().filter { $0.path == Fixture.bigFile }
        #expect(big.count == 2)
        #expect(big.last?.range != nil && big.last?.status == 200)
    }

    @Test("a corrupted byte fails the checksum and leaves nothing behind")
    func corruptedFile() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url, options: ["--corrupt", Fixture.bigFile])
        defer { hub.stop() }
        let cache = tmp.sub("cache")
        let client = HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: cache))
        var thrown: HubError?
        do {
            _ = try await client.snapshot(repo: Fixture.repo)
        } catch let error as HubError {
            thrown = error
        }
        guard case .checksumMismatch(let file, let expected, let actual) = try #require(thrown) else {
            Issue.record("expected a checksum mismatch, got \(String(describing: thrown))")
            return
        }
        #expect(file == Fixture.bigFile)
        #expect(expected != actual)
        #expect(thrown!.description.contains("removed"))
        #expect(thrown!.description.contains("again"))

        let repo = repoFolder(cache)
        let snapshots = repo.appendingPathComponent("snapshots")
        let leftInSnapshots = FileManager.default.subpaths(atPath: snapshots.path) ?? []
        #expect(!leftInSnapshots.contains { $0.hasSuffix(Fixture.bigFile) })
        let blobs = try FileManager.default.contentsOfDirectory(atPath: repo.appendingPathComponent("blobs").path)
        #expect(!blobs.contains { $0.contains(Self.sha256(fixture.files[Fixture.bigFile]!)) })
    }

    @Test("404 names the missing repository or revision")
    func notFound() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url)
        defer { hub.stop() }
        let client = HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("cache")))

        do {
            _ = try await client.snapshot(repo: "test-org/no-such-model")
            Issue.record("expected an error")
        } catch let error as HubError {
            #expect(error == .notFound(repo: "test-org/no-such-model", revision: "main", missing: .repository))
            #expect(error.description.contains("test-org/no-such-model"))
            #expect(error.description.contains("not found"))
        }
        do {
            _ = try await client.snapshot(repo: Fixture.repo, revision: "v9.9")
            Issue.record("expected an error")
        } catch let error as HubError {
            #expect(error == .notFound(repo: Fixture.repo, revision: "v9.9", missing: .revision))
            #expect(error.description.contains("v9.9"))
            #expect(error.description.contains("--revision"))
        }
    }

    @Test("401 without a token mentions HF_TOKEN; the token is sent when set")
    func unauthorized() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url, options: ["--require-token", "hf_secret", "--redirect-lfs"])
        defer { hub.stop() }
        do {
            _ = try await HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("a")))
                .snapshot(repo: Fixture.repo)
            Issue.record("expected an error")
        } catch let error as HubError {
            guard case .unauthorized(let repo, let status, _) = error else {
                Issue.record("expected unauthorized, got \(error)")
                return
            }
            #expect(repo == Fixture.repo)
            #expect(status == 401)
            #expect(error.description.contains("HF_TOKEN"))
        }
        let folder = try await HubClient(
            configuration: testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("b"), token: "hf_secret")
        ).snapshot(repo: Fixture.repo)
        #expect(try readTree(folder) == fixture.files)
        // The token is sent with every request to the hub.
        let requests = try hub.stats().requests
        #expect(requests.filter { $0.url.contains("/resolve/") }.allSatisfy { $0.authorization == "Bearer hf_secret" })
    }

    @Test("offline mode uses the cached copy, or says how to bring a model in")
    func offline() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let cache = tmp.sub("cache")
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url)
        let downloaded = try await HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: cache))
            .snapshot(repo: Fixture.repo)
        let endpoint = hub.endpoint
        hub.stop()  // nothing listens any more: offline must not need the network

        let offline = testConfiguration(endpoint: endpoint, cache: cache, offline: true)
        #expect(try await HubClient(configuration: offline).snapshot(repo: Fixture.repo) == downloaded)
        #expect(try await ModelLocator.resolve(Fixture.repo, configuration: offline) == downloaded)

        let empty = testConfiguration(endpoint: endpoint, cache: tmp.sub("empty"), offline: true)
        for attempt in 0..<2 {
            do {
                if attempt == 0 {
                    _ = try await HubClient(configuration: empty).snapshot(repo: Fixture.repo)
                } else {
                    _ = try await ModelLocator.resolve(Fixture.repo, configuration: empty)
                }
                Issue.record("expected an offline error")
            } catch let error as HubError {
                guard case .offline = error else {
                    Issue.record("expected offline, got \(error)")
                    continue
                }
                #expect(error.description.contains("HF_HUB_OFFLINE"))
                #expect(error.description.contains("--model"))
                #expect(error.description.contains("models--test-org--tiny-model"))
            }
        }

        // Online but unreachable, with a cached copy: the cached snapshot is used.
        var unreachable = testConfiguration(endpoint: endpoint, cache: cache)
        unreachable.maxRetries = 1
        #expect(try await HubClient(configuration: unreachable).snapshot(repo: Fixture.repo) == downloaded)
    }

    @Test("not enough disk space is reported before anything is downloaded")
    func diskSpace() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url)
        defer { hub.stop() }
        var configuration = testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("cache"))
        configuration.diskSpaceReserve = 1 << 60  // more than any disk
        await #expect {
            _ = try await HubClient(configuration: configuration).snapshot(repo: Fixture.repo)
        } throws: { error in
            guard case HubError.insufficientDiskSpace = error else { return false }
            return (error as! HubError).description.contains("HF_HUB_CACHE")
        }
        #expect(try hub.fileRequests().isEmpty)
    }

    @Test("ModelLocator downloads a repo id on first use and then resolves it from the cache")
    func locatorDownloadsOnce() async throws {
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url)
        defer { hub.stop() }
        let configuration = testConfiguration(endpoint: hub.endpoint, cache: tmp.sub("cache"))
        await #expect(throws: HubError.self) {
            _ = try await ModelLocator.resolve(Fixture.repo, configuration: configuration, download: false)
        }
        let first = try await ModelLocator.resolve(Fixture.repo, configuration: configuration)
        let requestsAfterFirst = try hub.stats().requests.count
        let second = try await ModelLocator.resolve(Fixture.repo, configuration: configuration)
        #expect(first == second)
        #expect(try hub.stats().requests.count == requestsAfterFirst)  // no network at all
        #expect(try readTree(first) == fixture.files)
    }
}

@Suite("Hub interop with huggingface_hub")
struct HubInteropTests {
    @Test("huggingface_hub reads a cache written by PostLens (local_files_only)")
    func pythonReadsOurCache() async throws {
        guard try requireHuggingfaceHub() else { return }
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url)
        defer { hub.stop() }
        let cache = tmp.sub("cache")
        let folder = try await HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: cache))
            .snapshot(repo: Fixture.repo)

        let script = """
            import hashlib, os, sys
            from huggingface_hub import snapshot_download
            path = snapshot_download(sys.argv[1], cache_dir=sys.argv[2], local_files_only=True)
            print(path)
            for root, _, names in os.walk(path):
                for name in sorted(names):
                    full = os.path.join(root, name)
                    print(os.path.relpath(full, path), hashlib.sha256(open(full, "rb").read()).hexdigest())
            """
        let (status, out, err) = try runProcess(
            [python, "-c", script, Fixture.repo, cache.path],
            environment: ["HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_ENDPOINT": hub.endpoint])
        #expect(status == 0, "python failed: \(err)")
        let lines = out.split(separator: "\n").map(String.init)
        #expect(URL(fileURLWithPath: lines.first ?? "").standardizedFileURL.path == folder.standardizedFileURL.path)
        var hashes: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ")
            if parts.count == 2 { hashes[String(parts[0])] = String(parts[1]) }
        }
        #expect(hashes == fixture.files.mapValues { HubDownloadTests.sha256($0) })
    }

    @Test("PostLens reads and reuses a cache written by huggingface_hub")
    func weReadPythonCache() async throws {
        guard try requireHuggingfaceHub() else { return }
        let tmp = try TemporaryFolder()
        let fixture = try Fixture(in: tmp.url)
        let hub = try FakeHub(fixture: fixture, scratch: tmp.url)
        defer { hub.stop() }
        let cache = tmp.sub("cache")
        let script = """
            import sys
            from huggingface_hub import snapshot_download
            print(snapshot_download(sys.argv[1], cache_dir=sys.argv[2]))
            """
        let (status, out, err) = try runProcess(
            [python, "-c", script, Fixture.repo, cache.path],
            environment: ["HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1",
                          "HF_HUB_OFFLINE": "0", "HF_TOKEN": ""])
        try #require(status == 0, "python snapshot_download failed: \(err)")
        let pythonFolder = URL(fileURLWithPath: out.trimmingCharacters(in: .whitespacesAndNewlines))

        // Offline: found in the cache.
        let offline = testConfiguration(endpoint: hub.endpoint, cache: cache, offline: true)
        let found = try await HubClient(configuration: offline).snapshot(repo: Fixture.repo)
        #expect(found.standardizedFileURL.path == pythonFolder.standardizedFileURL.path)
        #expect(try readTree(found) == fixture.files)
        #expect(try await ModelLocator.resolve(Fixture.repo, configuration: offline).path == found.path)

        // Online: nothing is downloaded again.
        let before = try hub.fileRequests().count
        let online = try await HubClient(configuration: testConfiguration(endpoint: hub.endpoint, cache: cache))
            .snapshot(repo: Fixture.repo)
        #expect(online.path == found.path)
        #expect(try hub.fileRequests().count == before)
    }
}

@Suite("Hub configuration and helpers")
struct HubUnitTests {
    @Test("environment variables select endpoint, token, cache and offline mode like huggingface_hub")
    func environment() throws {
        let defaults = HubConfiguration.fromEnvironment(["HOME": "/home/u"])
        #expect(defaults.endpoint == "https://huggingface.co")
        #expect(defaults.token == nil)
        #expect(defaults.cacheDirectory.path == "/home/u/.cache/huggingface/hub")
        #expect(defaults.offline == false)

        let custom = HubConfiguration.fromEnvironment([
            "HOME": "/home/u", "HF_ENDPOINT": "https://hf-mirror.com/", "HF_TOKEN": "hf_abc",
            "HF_HOME": "/data/hf", "HF_HUB_OFFLINE": "true",
        ])
        #expect(custom.endpoint == "https://hf-mirror.com")
        #expect(custom.token == "hf_abc")
        #expect(custom.cacheDirectory.path == "/data/hf/hub")
        #expect(custom.offline)

        let hubCache = HubConfiguration.fromEnvironment(["HOME": "/home/u", "HF_HOME": "/data/hf", "HF_HUB_CACHE": "~/models", "HF_HUB_OFFLINE": "0"])
        #expect(hubCache.cacheDirectory.path == "/home/u/models")
        #expect(hubCache.offline == false)
        #expect(HubConfiguration.fromEnvironment(["HOME": "/h", "XDG_CACHE_HOME": "/xdg"]).cacheDirectory.path == "/xdg/huggingface/hub")

        // The token file written by `hf auth login`.
        let tmp = try TemporaryFolder()
        try Data("hf_from_file\n".utf8).write(to: tmp.url.appendingPathComponent("token"))
        #expect(HubConfiguration.fromEnvironment(["HOME": "/h", "HF_HOME": tmp.url.path]).token == "hf_from_file")
    }

    @Test("repo ids map to cache folder names and reject path tricks")
    func repoIDs() throws {
        #expect(try RepoID("Qwen/Qwen3-VL-2B-Instruct").cacheFolderName == "models--Qwen--Qwen3-VL-2B-Instruct")
        #expect(try RepoID("gpt2").cacheFolderName == "models--gpt2")
        for bad in ["", "a/b/c", "../x", "a/..", "a--b/c", "/abs", "a/b c", "org/"] {
            #expect(throws: HubError.self) { try RepoID(bad) }
        }
        #expect(PathRules.isSafeRelativePath("a/b.json"))
        for bad in ["../x", "a/../b", "/etc/passwd", "a//b", "./a", ""] {
            #expect(!PathRules.isSafeRelativePath(bad))
        }
        #expect(URLPath.encodeComponent("refs/pr/1") == "refs%2Fpr%2F1")
        #expect(URLPath.encodePath("sub dir/a+b.json") == "sub%20dir/a%2Bb.json")
    }

    @Test("ModelLocator accepts model folders and explains what is wrong otherwise")
    func locatorFolders() async throws {
        let tmp = try TemporaryFolder()
        let model = tmp.sub("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: model.appendingPathComponent("config.json"))
        let configuration = testConfiguration(endpoint: "http://127.0.0.1:9", cache: tmp.sub("cache"), offline: true)
        #expect(try await ModelLocator.resolve(model.path, configuration: configuration).path == model.standardizedFileURL.path)

        let notModel = tmp.sub("not-model")
        try FileManager.default.createDirectory(at: notModel, withIntermediateDirectories: true)
        for argument in [notModel.path, tmp.url.appendingPathComponent("missing").path, "./missing", "not a repo id"] {
            await #expect {
                _ = try await ModelLocator.resolve(argument, configuration: configuration)
            } throws: { error in
                guard case HubError.notAModelFolder = error else { return false }
                return true
            }
        }
        #expect(ModelLocator.splitRevision("org/name@v1") == ("org/name", "v1"))
        #expect(ModelLocator.splitRevision("org/name") == ("org/name", "main"))
    }

    @Test("byte counts read as people write them")
    func byteCounts() {
        #expect(ByteCount.format(999) == "999 B")
        #expect(ByteCount.format(1_500_000) == "1.50 MB")
    }

    @Test("proxy settings follow HTTPS_PROXY and NO_PROXY")
    func proxies() {
        #expect(ProxySettings.proxy(for: "https://huggingface.co", environment: [:]) == nil)
        #expect(ProxySettings.proxy(for: "https://huggingface.co", environment: ["HTTPS_PROXY": "http://proxy:3128"]) != nil)
        #expect(ProxySettings.proxy(for: "https://huggingface.co", environment: ["HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".huggingface.co"]) == nil)
        #expect(ProxySettings.proxy(for: "http://127.0.0.1:8080", environment: ["HTTP_PROXY": "http://proxy:3128"]) == nil)
    }
}
