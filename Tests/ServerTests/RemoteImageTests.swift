import Foundation
import HummingbirdTesting
import Testing
@testable import Server

/// A Python image host on loopback for one test (stopped when the test ends).
final class ImageHost: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let port: Int

    init() throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Fixture.root.deletingLastPathComponent().appendingPathComponent("ServerTests/image_host.py").path,
                             Fixture.root.appendingPathComponent("models/tiny/reference").path]
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line += byte }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else { throw CancellationError() }
        self.port = port
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

@Suite struct RemoteImageTests {
    func body(_ url: String) -> [String: Any] {
        ["temperature": 0, "max_tokens": 4, "messages": [userWithImages("Describe this image.", [url])]]
    }

    @Test func remoteURLsAreRefusedByDefault() async throws {
        let host = try ImageHost()
        try await runApp { client in
            let response = try await client.post(json: body(host.url("img_a.png")))
            #expect(response.status == .badRequest)
            #expect(response.errorParam == "messages[0].content[0].image_url.url")
        }
    }

    @Test func loopbackAndPrivateHostsAreRefusedEvenWhenAllowed() async throws {
        let host = try ImageHost()
        try await runApp(Fixture.configuration { $0.allowRemoteImages = true }) { client in
            for url in [host.url("img_a.png"), "http://localhost:\(host.port)/img_a.png", "http://169.254.169.254/latest/meta-data",
                        "http://10.0.0.1/x.png", "http://[::1]:\(host.port)/img_a.png"] {
                let response = try await client.post(json: body(url))
                #expect(response.status == .badRequest, "\(url)")
                #expect((response.error["message"] as? String)?.contains("private, loopback or link-local") == true, "\(url)")
            }
        }
    }

    @Test func allowedRemoteImageGivesTheSameAnswerAsADataURL() async throws {
        let host = try ImageHost()
        try await runApp(Fixture.configuration { $0.allowRemoteImages = true; $0.allowPrivateImageHosts = true }) { client in
            let remote = try await client.post(json: body(host.url("img_a.png")))
            #expect(remote.status == .ok)
            let inline = try await client.post(json: body(try Fixture.dataURL("models/tiny/reference/img_a.png")))
            #expect(remote.content == inline.content)
            // Redirects are followed up to the cap, and refused beyond it.
            #expect(try await client.post(json: body(host.url("redirect/3/img_a.png"))).content == inline.content)
            let tooMany = try await client.post(json: body(host.url("redirect/4/img_a.png")))
            #expect(tooMany.status == .badRequest)
            let missing = try await client.post(json: body(host.url("nope.png")))
            #expect(missing.status == .badRequest)
            #expect((missing.error["message"] as? String)?.contains("404") == true)
        }
    }

    @Test func oversizedRemoteImageIs413() async throws {
        let host = try ImageHost()
        let configuration = Fixture.configuration { $0.allowRemoteImages = true; $0.allowPrivateImageHosts = true; $0.maxImageFileBytes = 100_000 }
        try await runApp(configuration) { client in
            let response = try await client.post(json: body(host.url("big")))
            #expect(response.status == .contentTooLarge)
        }
    }

    @Test func addressClassification() {
        #expect(RemoteImageFetcher.isPublic([8, 8, 8, 8]))
        #expect(RemoteImageFetcher.isPublic([93, 184, 216, 34]))
        for address in [[127, 0, 0, 1], [10, 1, 2, 3], [172, 20, 0, 1], [192, 168, 1, 1], [169, 254, 169, 254], [100, 64, 0, 1], [0, 0, 0, 0], [224, 0, 0, 1]] as [[UInt8]] {
            #expect(!RemoteImageFetcher.isPublic(address), "\(address)")
        }
        var loopback6 = [UInt8](repeating: 0, count: 16); loopback6[15] = 1
        #expect(!RemoteImageFetcher.isPublic(loopback6))
        var mapped = [UInt8](repeating: 0, count: 16); mapped[10] = 0xFF; mapped[11] = 0xFF; mapped[12] = 127; mapped[15] = 1
        #expect(!RemoteImageFetcher.isPublic(mapped))
        var linkLocal6 = [UInt8](repeating: 0, count: 16); linkLocal6[0] = 0xFE; linkLocal6[1] = 0x80
        #expect(!RemoteImageFetcher.isPublic(linkLocal6))
    }
}
