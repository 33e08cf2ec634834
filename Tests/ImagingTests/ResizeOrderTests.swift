import Foundation
@testable import Imaging
import Testing

/// resize_checks.json, written by `tools/fixtures/make_image_fixtures.py --resize-only`: PIL 13
/// `resize(BICUBIC)` outputs for shapes where one axis grows and the other shrinks, and for both sides of
/// Pillow's pass-order boundary. Sources are raw RGB (`.rgb`) or a PNG decoded with our decoder.
struct ResizeChecks: Decodable {
    struct Check: Decodable, CustomTestStringConvertible {
        let name: String
        let source: String
        let width: Int
        let height: Int
        let out_width: Int
        let out_height: Int
        let expected: String
        var testDescription: String { "\(name) \(width)x\(height)→\(out_width)x\(out_height)" }
    }
    let checks: [Check]

    static let all: [Check] = {
        guard let data = try? fixtureData("resize_checks.json"),
              let checks = try? JSONDecoder().decode(ResizeChecks.self, from: data) else { return [] }
        return checks.checks
    }()
}

private func loadSource(_ check: ResizeChecks.Check) throws -> RGBImage {
    let data = try fixtureData(check.source)
    if check.source.hasSuffix(".rgb") {
        return RGBImage(width: check.width, height: check.height, pixels: [UInt8](data))
    }
    return try ImageDecoder.decode(data)
}

@Suite struct ResizeOrderTests {
    @Test func fixtureManifestLoads() {
        #expect(ResizeChecks.all.count == 7)
        #expect(ResizeChecks.all.contains { $0.name == "img_c" && $0.width == 112 && $0.height == 72 })
    }

    /// Bit-exact against PIL, and the other pass order would not be: each fixture pins the order.
    @Test(arguments: ResizeChecks.all)
    func mixedUpDownMatchesPIL(check: ResizeChecks.Check) throws {
        let image = try loadSource(check)
        #expect(image.width == check.width && image.height == check.height)
        #expect(image.pixels.count == check.width * check.height * 3)
        let expected = [UInt8](try fixtureData(check.expected))
        #expect(expected.count == check.out_width * check.out_height * 3)

        let out = resizeBicubicAntialiased(image, width: check.out_width, height: check.out_height)
        #expect(out.width == check.out_width && out.height == check.out_height)
        let diffs = zip(out.pixels, expected).filter { $0 != $1 }.count
        let maxDiff = zip(out.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(diffs == 0, "\(check.testDescription): \(diffs) bytes differ, max |Δ| \(maxDiff)")

        let verticalFirst = resamplesVerticallyFirst(inWidth: check.width, inHeight: check.height,
                                                     outWidth: check.out_width, outHeight: check.out_height)
        let other = resizeBicubicAntialiased(image, width: check.out_width, height: check.out_height,
                                             verticalFirst: !verticalFirst)
        #expect(other.pixels != expected, "\(check.testDescription): fixture does not discriminate the pass order")
    }

    @Test func passOrderRule() {
        // Width up, height down: vertical first (the img_c.png case).
        #expect(resamplesVerticallyFirst(inWidth: 112, inHeight: 72, outWidth: 128, outHeight: 64))
        #expect(resamplesVerticallyFirst(inWidth: 60, inHeight: 100, outWidth: 64, outHeight: 96))
        // Width down, height up; both up; both down evenly: horizontal first.
        #expect(!resamplesVerticallyFirst(inWidth: 100, inHeight: 60, outWidth: 96, outHeight: 64))
        #expect(!resamplesVerticallyFirst(inWidth: 8, inHeight: 8, outWidth: 32, outHeight: 20))
        #expect(!resamplesVerticallyFirst(inWidth: 200, inHeight: 200, outWidth: 100, outHeight: 100))
        // The boundary: height reduced by exactly 2× the width reduction stays horizontal first.
        #expect(!resamplesVerticallyFirst(inWidth: 40, inHeight: 64, outWidth: 24, outHeight: 32))
        #expect(resamplesVerticallyFirst(inWidth: 40, inHeight: 65, outWidth: 24, outHeight: 32))
    }

    /// Both orders agree with the Double twin within the usual fixed-point slack.
    @Test(arguments: [(112, 72, 128, 64), (60, 100, 64, 96), (32, 100, 24, 48)])
    func verticalFirstMatchesNaiveTwin(shape: (Int, Int, Int, Int)) {
        let (w, h, ow, oh) = shape
        let image = randomImage(width: w, height: h, seed: UInt64(w * 7919 + h))
        let fast = resizeBicubicAntialiased(image, width: ow, height: oh, verticalFirst: true)
        let naive = naiveBicubicResize(image, width: ow, height: oh, verticalFirst: true)
        let maxDiff = zip(fast.pixels, naive.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(maxDiff <= 2, "\(w)x\(h)→\(ow)x\(oh): max diff \(maxDiff)")
    }
}
