import Foundation
import Imaging
import Testing

@Suite struct BadInputTests {
    @Test func emptyData() {
        #expect(throws: ImageError.empty) { try ImageDecoder.decode(Data()) }
    }

    @Test func randomBytes() {
        var rng = SplitMix(state: 42)
        let data = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        #expect(ImageDecoder.sniff(data) == nil)
        #expect(throws: ImageError.unsupportedFormat) { try ImageDecoder.decode(data) }
    }

    @Test func randomBytesBehindEachSignature() {
        var rng = SplitMix(state: 7)
        let noise = (0..<2048).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let heads: [[UInt8]] = [
            [0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], Array("RIFF\u{0}\u{8}\u{0}\u{0}WEBP".utf8),
            Array("GIF89a".utf8), Array("BM".utf8) + [0, 0, 0, 0],
        ]
        for head in heads {
            #expect(throws: ImageError.self) { try ImageDecoder.decode(Data(head + noise)) }
        }
    }

    @Test func truncatedJPEG() throws {
        let jpeg = try fixtureData("odd_333x217.jpg")
        for length in [3, 100, jpeg.count / 2, jpeg.count - 10] {
            let error = #expect(throws: ImageError.self) { try ImageDecoder.decode(jpeg.prefix(length)) }
            guard case .corrupt? = error else { Issue.record("length \(length): \(String(describing: error))"); continue }
        }
    }

    @Test func truncatedPNG() throws {
        let png = try fixtureData("portrait_200x400.png")
        #expect(throws: ImageError.self) { try ImageDecoder.decode(png.prefix(png.count / 2)) }
        #expect(throws: ImageError.self) { try ImageDecoder.decode(png.prefix(30)) }
    }

    /// A valid signature and IHDR (correct CRC) announcing 100000×100000: refused before any allocation.
    @Test func pngDecompressionBomb() {
        var ihdr = bigEndian(100_000) + bigEndian(100_000)
        ihdr += [8, 2, 0, 0, 0]
        let bytes = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + pngChunk("IHDR", ihdr)
            + pngChunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + pngChunk("IEND", [])
        #expect(throws: ImageError.tooLarge(width: 100_000, height: 100_000, limit: ImageDecoder.defaultMaxPixels)) {
            try ImageDecoder.decode(Data(bytes))
        }
    }

    @Test func pixelLimitIsConfigurable() throws {
        let data = try fixtureData("odd_333x217.jpg")
        #expect(throws: ImageError.tooLarge(width: 333, height: 217, limit: 1000)) {
            try ImageDecoder.decode(data, maxPixels: 1000)
        }
        #expect(try ImageDecoder.decode(data, maxPixels: 333 * 217).width == 333)
    }

    @Test func corruptWebP() throws {
        let webp = try fixtureData("lossy.webp")
        #expect(throws: ImageError.self) { try ImageDecoder.decode(webp.prefix(webp.count / 2)) }
        var garbage = [UInt8](webp.prefix(20))
        var rng = SplitMix(state: 3)
        garbage += (0..<500).map { _ in UInt8.random(in: 0...255, using: &rng) }
        #expect(throws: ImageError.self) { try ImageDecoder.decode(Data(garbage)) }
    }

    /// Header, global colour table and trailer, but no image descriptor.
    @Test func gifWithoutFrames() {
        let bytes: [UInt8] = Array("GIF89a".utf8) + [4, 0, 4, 0, 0x80, 0, 0] + [0, 0, 0, 255, 255, 255] + [0x3B]
        #expect(throws: ImageError.corrupt("GIF: the file contains no image frame")) { try ImageDecoder.decode(Data(bytes)) }
    }

    @Test func errorMessagesAreSpecific() {
        #expect(ImageError.tooLarge(width: 100_000, height: 100_000, limit: 100_000_000).description
            == "image too large: 100000x100000 = 10000000000 pixels exceeds the limit of 100000000 pixels")
        #expect(ImageError.empty.description == "image data is empty")
    }
}
