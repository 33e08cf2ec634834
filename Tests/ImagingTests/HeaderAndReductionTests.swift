import Foundation
import Imaging
import Testing

/// What the server checks before decoding (issue 13 §3): the header's upright size for every format, and decoding a
/// large JPEG straight towards its budget instead of at full size.
@Suite struct HeaderAndReductionTests {
    @Test(arguments: [
        ("large_2000x1500.jpg", 2000, 1500), ("odd_333x217.jpg", 333, 217), ("portrait_200x400.png", 200, 400),
        ("tiny_20x30.png", 20, 30), ("rgb24.bmp", -1, -1), ("anim.gif", -1, -1), ("lossy.webp", -1, -1),
        ("exif_orient6.jpg", -1, -1), ("exif_orient8.png", -1, -1), ("exif_orient6.webp", -1, -1),
    ])
    func headersGiveTheUprightSizeWithoutDecoding(_ name: String, _ width: Int, _ height: Int) throws {
        let data = try fixtureData(name)
        let header = try ImageDecoder.header(data)
        let decoded = try ImageDecoder.decode(data)
        // The header agrees with the decoder, EXIF rotations included.
        #expect(header.width == decoded.width && header.height == decoded.height, "\(name)")
        if width > 0 { #expect(header.width == width && header.height == height) }
    }

    @Test func headersOfDamagedFilesAreErrors() {
        for bytes: [UInt8] in [[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], [0xFF, 0xD8, 0xFF, 0xE0], Array("GIF89a".utf8), []] {
            #expect(throws: ImageError.self) { try ImageDecoder.header(Data(bytes)) }
        }
    }

    @Test func aLargeJPEGIsDecodedNearItsTarget() throws {
        let data = try fixtureData("large_2000x1500.jpg")
        // Target 200 × 150: 1/4 scale (500 × 375) is the smallest still at least twice the target.
        let reduced = try ImageDecoder.decode(data, reducingTo: (width: 200, height: 150))
        #expect(reduced.width == 500 && reduced.height == 375)
        // A target close to the full size decodes at full size (the exact reference path).
        let full = try ImageDecoder.decode(data, reducingTo: (width: 1024, height: 768))
        #expect(full.width == 2000 && full.height == 1500)
        // The reduced decode resized to the target stays close to the full decode resized to it.
        let fromReduced = resizeBicubicAntialiased(reduced, width: 200, height: 150)
        let fromFull = resizeBicubicAntialiased(try ImageDecoder.decode(data), width: 200, height: 150)
        let difference = zip(fromReduced.pixels, fromFull.pixels).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(fromFull.pixels.count)
        #expect(difference < 4, "mean absolute difference \(difference)")
    }

    @Test func reductionFollowsTheOrientation() throws {
        // Stored landscape, shown portrait (EXIF 6): the target is upright.
        let data = try fixtureData("exif_orient6.jpg")
        let header = try ImageDecoder.header(data)
        let image = try ImageDecoder.decode(data, reducingTo: (width: max(1, header.width / 8), height: max(1, header.height / 8)))
        #expect(image.width <= header.width && image.height <= header.height)
        #expect((image.width < image.height) == (header.width < header.height))
    }
}
