import Imaging
import Qwen3VL
import Testing

@Suite struct PatchifyTests {
    /// Every row of pixel_values is the 16×16 block the merge-window order says, channel-major, and the two
    /// temporal halves are equal.
    @Test func mergeWindowOrder() throws {
        let width = 96, height = 64
        func sample(_ x: Int, _ y: Int, _ c: Int) -> UInt8 { UInt8((x * 7 + y * 13 + c * 71) % 256) }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height { for x in 0..<width { for c in 0..<3 { pixels[(y * width + x) * 3 + c] = sample(x, y, c) } } }
        let image = RGBImage(width: width, height: height, pixels: pixels)

        let out = try ImageProcessor(configuration: .qwen3VL).process(image, minPixels: 1024, maxPixels: 1 << 24)
        #expect(out.gridT == 1 && out.gridH == 4 && out.gridW == 6)
        #expect(out.patchCount == 24 && out.tokenCount == 6)
        #expect(out.pixelValues.count == 24 * 1536)

        let gw = out.gridW
        var mismatches = 0
        for n in 0..<out.patchCount {
            let c = n % 2, r = (n / 2) % 2, block = n / 4
            let br = block / (gw / 2), bc = block % (gw / 2)
            let top = (2 * br + r) * 16, left = (2 * bc + c) * 16
            for ch in 0..<3 {
                for t in 0..<2 {
                    for y in 0..<16 {
                        for x in 0..<16 {
                            let col = ((ch * 2 + t) * 16 + y) * 16 + x
                            let expected = Float(sample(left + x, top + y, ch)) / 127.5 - 1
                            if abs(out.pixelValues[n * 1536 + col] - expected) > 1e-6 { mismatches += 1 }
                        }
                    }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func normalisationRange() throws {
        let black = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 0, count: 32 * 32 * 3))
        let white = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 255, count: 32 * 32 * 3))
        let processor = ImageProcessor(configuration: .qwen3VL)
        #expect(try processor.process(black, minPixels: 1024).pixelValues.allSatisfy { $0 == -1 })
        #expect(try processor.process(white, minPixels: 1024).pixelValues.allSatisfy { $0 == 1 })
    }
}
