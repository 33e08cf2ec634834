import Foundation
import HummingbirdTesting
import RemoteImages
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
        func v6(_ text: String) -> [UInt8] {
            var address = in6_addr()
            precondition(inet_pton(AF_INET6, text, &address) == 1, text)
            return withUnsafeBytes(of: address) { Array($0) }
        }
        for address in [[8, 8, 8, 8], [93, 184, 216, 34]] as [[UInt8]] { #expect(AddressPolicy.isPublic(address), "\(address)") }
        for text in ["2606:4700::1111", "2002:808:808::1", "64:ff9b::808:808"] { #expect(AddressPolicy.isPublic(v6(text)), "\(text)") }
        for address in [[127, 0, 0, 1], [10, 1, 2, 3], [172, 20, 0, 1], [192, 168, 1, 1], [169, 254, 169, 254], [100, 64, 0, 1],
                        [0, 0, 0, 0], [224, 0, 0, 1], [192, 0, 0, 170], [192, 88, 99, 1], [198, 18, 0, 1], [255, 255, 255, 255]] as [[UInt8]] {
            #expect(!AddressPolicy.isPublic(address), "\(address)")
        }
        // Loopback, mapped, compatible, NAT64, 6to4 and Teredo forms of private addresses; local IPv6 ranges.
        for text in ["::1", "::", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1", "64:ff9b::7f00:1",
                     "64:ff9b:1::1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
                     "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1", "100::1", "3fff::1", "5f00::1", "4000::1"] {
            #expect(!AddressPolicy.isPublic(v6(text)), "\(text)")
        }
    }

    @Test func theConnectionGoesToTheCheckedAddress() async throws {
        // A name is resolved once, checked, and the fetch connects to that address (AsyncHTTPClient's DNS override).
        let host = try ImageHost()
        var fetcher = RemoteImageFetcher(maxBytes: 1 << 20, allowPrivateAddresses: true)
        #expect(["127.0.0.1", "::1"].contains(try await fetcher.checkedAddress(of: "localhost")))
        let bytes = try await fetcher.fetch("http://localhost:\(host.port)/img_a.png")
        #expect(bytes == (try Fixture.file("models/tiny/reference/img_a.png")))
        fetcher.allowPrivateAddresses = false
        await #expect(throws: RemoteImageError.privateAddress("localhost")) { _ = try await fetcher.fetch("http://localhost:\(host.port)/img_a.png") }
    }
}
