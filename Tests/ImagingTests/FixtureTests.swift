import Foundation
import Imaging
import Qwen3VL
import Testing

/// Golden comparison against transformers' Qwen2VLImageProcessorPil (see Tests/Fixtures/images/README.md).
@Suite struct FixtureTests {
    static let manifest = (try? ReferenceManifest.load())?.images ?? []

    @Test func manifestIsPresent() throws {
        let manifest = try ReferenceManifest.load()
        #expect(manifest.images.count >= 10)
    }

    @Test(arguments: manifest.map(\.file))
    func matchesReference(file: String) throws {
        let entry = try #require(Self.manifest.first { $0.file == file })
        let image = try ImageDecoder.decode(fixtureData(file))
        #expect(image.width == entry.decoded_width && image.height == entry.decoded_height,
                "\(file): decoded \(image.width)x\(image.height)")

        let config = try PreprocessorConfiguration.load(from: imageFixtures.appendingPathComponent("preprocessor_config.json"))
        let processed = try ImageProcessor(configuration: config).process(image, maxPixels: entry.max_pixels)
        #expect([processed.gridT, processed.gridH, processed.gridW] == entry.image_grid_thw, "\(file): grid")
        guard [processed.gridT, processed.gridH, processed.gridW] == entry.image_grid_thw else { return }

        let reference = [UInt8](try fixtureData(entry.reference))
        let n = processed.patchCount
        try #require(reference.count == n * 768)
        try #require(processed.pixelValues.count == n * 1536)
        var maxDiff: Float = 0, sumDiff: Double = 0, worst = 0, duplicatesEqual = true
        processed.pixelValues.withUnsafeBufferPointer { v in
            for row in 0..<n {
                for ch in 0..<3 {
                    for i in 0..<256 {
                        let ours = v[row * 1536 + ch * 512 + i]
                        if v[row * 1536 + ch * 512 + 256 + i] != ours { duplicatesEqual = false }
                        let expected = Float(reference[row * 768 + ch * 256 + i]) / 127.5 - 1
                        let d = abs(ours - expected)
                        sumDiff += Double(d)
                        if d > maxDiff { maxDiff = d; worst = row * 1536 + ch * 512 + i }
                    }
                }
            }
        }
        let meanDiff = sumDiff / Double(n * 768)
        print("fixture \(file): grid \(entry.image_grid_thw) max |diff| \(maxDiff) (\(Int((maxDiff * 127.5).rounded())) LSB) "
            + "mean |diff| \(String(format: "%.6f", meanDiff)) worst index \(worst)")
        #expect(duplicatesEqual, "\(file): temporal copies differ")
        #expect(maxDiff <= 0.02, "\(file): max |diff| \(maxDiff) at \(worst)")
        #expect(meanDiff <= 0.002, "\(file): mean |diff| \(meanDiff)")
    }

    /// EXIF orientation from PNG eXIf, WebP EXIF and JPEG APP1 (mirror), decoded pixels against PIL's.
    @Test(arguments: (try? ReferenceManifest.load())?.decode_checks.map(\.file) ?? [])
    func decodeMatchesPIL(file: String) throws {
        let check = try #require(try ReferenceManifest.load().decode_checks.first { $0.file == file })
        let image = try ImageDecoder.decode(fixtureData(file))
        #expect(image.width == check.width && image.height == check.height, "\(file): \(image.width)x\(image.height)")
        let expected = [UInt8](try fixtureData(check.rgb))
        try #require(expected.count == image.pixels.count)
        let maxDiff = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(maxDiff <= 1, "\(file): max decode diff \(maxDiff)")
    }

    /// A file named .png that holds JPEG bytes is decoded as the JPEG it is (format sniffed from magic bytes).
    @Test func misnamedFileIsSniffed() throws {
        let jpeg = try fixtureData("odd_333x217.jpg")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("postlens-claims-png-\(getpid()).png")
        try jpeg.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let data = try Data(contentsOf: url)
        #expect(ImageDecoder.sniff(data) == .jpeg)
        #expect(try ImageDecoder.decode(data) == ImageDecoder.decode(jpeg))
    }

    @Test func sniffsEveryFixtureFormat() throws {
        let expected: [String: ImageFormat] = [
            "odd_333x217.jpg": .jpeg, "tiny_20x30.png": .png, "lossy.webp": .webp, "anim.gif": .gif, "rgb24.bmp": .bmp,
        ]
        for (file, format) in expected { #expect(try ImageDecoder.sniff(fixtureData(file)) == format, "\(file)") }
    }

    /// EXIF orientation 6 and 3 fixtures store the same kind of scene as their plain decode rotated.
    @Test func exifOrientationRotates() throws {
        let rotated = try ImageDecoder.decode(fixtureData("exif_orient6.jpg"))
        #expect(rotated.width == 240 && rotated.height == 320)
        let flipped = try ImageDecoder.decode(fixtureData("exif_orient3.jpg"))
        #expect(flipped.width == 320 && flipped.height == 240)
    }
}
