import Imaging
import Testing

/// The naive twin of `resizeBicubicAntialiased`: the spec §2.4 text in Double, one output sample at a time.
/// `verticalFirst` (default: horizontal first) transposes in and out, which runs the vertical pass first.
func naiveBicubicResize(_ image: RGBImage, width: Int, height: Int, verticalFirst: Bool = false) -> RGBImage {
    if verticalFirst {
        let t = naiveBicubicResize(transposed(image), width: height, height: width)
        return transposed(t)
    }
    func kernel(_ x: Double) -> Double {
        let a = -0.5, t = abs(x)
        if t < 1 { return (a + 2) * t * t * t - (a + 3) * t * t + 1 }
        if t < 2 { return a * t * t * t - 5 * a * t * t + 8 * a * t - 4 * a }
        return 0
    }
    func weights(_ inSize: Int, _ outSize: Int, _ i: Int) -> (Int, [Double]) {
        let scale = Double(inSize) / Double(outSize), fs = max(scale, 1), support = 2 * fs
        let center = (Double(i) + 0.5) * scale
        let lo = max(0, Int(center - support + 0.5)), hi = min(inSize, Int(center + support + 0.5))
        let w = (lo..<hi).map { kernel((Double($0) - center + 0.5) / fs) }
        let sum = w.reduce(0, +)
        return (lo, w.map { $0 / sum })
    }
    func clamp(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }
    var mid = [UInt8](repeating: 0, count: width * image.height * 3)
    for y in 0..<image.height {
        for x in 0..<width {
            let (lo, w) = weights(image.width, width, x)
            for c in 0..<3 {
                var s = 0.0
                for (j, wj) in w.enumerated() { s += wj * Double(image.pixels[(y * image.width + lo + j) * 3 + c]) }
                mid[(y * width + x) * 3 + c] = clamp(s)
            }
        }
    }
    var out = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        let (lo, w) = weights(image.height, height, y)
        for x in 0..<width {
            for c in 0..<3 {
                var s = 0.0
                for (j, wj) in w.enumerated() { s += wj * Double(mid[((lo + j) * width + x) * 3 + c]) }
                out[(y * width + x) * 3 + c] = clamp(s)
            }
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

func transposed(_ image: RGBImage) -> RGBImage {
    var out = [UInt8](repeating: 0, count: image.pixels.count)
    for y in 0..<image.height {
        for x in 0..<image.width {
            for c in 0..<3 { out[(x * image.height + y) * 3 + c] = image.pixels[(y * image.width + x) * 3 + c] }
        }
    }
    return RGBImage(width: image.height, height: image.width, pixels: out)
}

@Suite struct ResizeTests {
    @Test func identityWhenSizeUnchanged() {
        let image = randomImage(width: 37, height: 23, seed: 1)
        #expect(resizeBicubicAntialiased(image, width: 37, height: 23) == image)
    }

    @Test(arguments: [(37, 23, 101, 64), (333, 217, 64, 96), (50, 50, 50, 17), (50, 50, 13, 50), (9, 7, 320, 256),
                      (400, 30, 97, 29)])
    func matchesNaiveTwin(shape: (Int, Int, Int, Int)) {
        let (w, h, ow, oh) = shape
        let image = randomImage(width: w, height: h, seed: UInt64(w * 1000 + h))
        let fast = resizeBicubicAntialiased(image, width: ow, height: oh)
        let naive = naiveBicubicResize(image, width: ow, height: oh)
        #expect(fast.width == ow && fast.height == oh)
        // Fixed-point vs Double weights: at most 1 LSB per pass.
        let maxDiff = zip(fast.pixels, naive.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(maxDiff <= 2, "\(w)x\(h)→\(ow)x\(oh): max diff \(maxDiff)")
    }

    @Test func constantImageStaysConstant() {
        let gray = RGBImage(width: 41, height: 29, pixels: [UInt8](repeating: 200, count: 41 * 29 * 3))
        let out = resizeBicubicAntialiased(gray, width: 256, height: 288)
        #expect(out.pixels.allSatisfy { $0 == 200 })
        let down = resizeBicubicAntialiased(gray, width: 7, height: 5)
        #expect(down.pixels.allSatisfy { $0 == 200 })
    }
}
