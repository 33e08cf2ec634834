/// PIL's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB (qwen3vl-spec.md §2.4), reproduced bit for bit:
/// PIL `libImaging/Resample.c` `precompute_coeffs` + `normalize_coeffs_8bpc` + `ImagingResampleHorizontal_8bpc`
/// / `ImagingResampleVertical_8bpc`.
///
/// - Keys cubic kernel with a = −0.5, support 2, widened by the downscale factor (antialiasing);
/// - weights normalised to sum 1 in Double, then converted to 22-bit fixed point (round half away from zero);
/// - two separable passes with a uint8 intermediate (`(acc + 2^21) >> 22`, clamped); a pass whose size is
///   unchanged is skipped (PIL skips it too; the kernel would be the identity anyway);
/// - the pass ORDER follows Pillow 13 (`ImagingResampleInner`; apparently python-pillow/Pillow#9549, "If height is
///   scaled down significantly more than width, resize vertically first"): normally horizontal
///   first (only over the source rows the vertical pass will read), but vertical first when the height shrinks
///   by more than twice as many pixels as the width does — see `resamplesVerticallyFirst`. The order changes
///   the result (the intermediate is rounded to uint8), by up to several levels.
/// Same size in and out returns the image unchanged (PIL returns a copy).
public func resizeBicubicAntialiased(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
    precondition(width > 0 && height > 0, "resize target must be positive, got \(width)x\(height)")
    if width == image.width && height == image.height { return image }
    precondition(image.width > 0 && image.height > 0, "cannot resize an empty image")
    let verticalFirst = resamplesVerticallyFirst(inWidth: image.width, inHeight: image.height,
                                                 outWidth: width, outHeight: height)
    return resizeBicubicAntialiased(image, width: width, height: height, verticalFirst: verticalFirst)
}

/// Whether Pillow (13.0) runs the vertical pass before the horizontal one: only when the height is reduced, and
/// by strictly more than twice the number of pixels the width is reduced by (`inH − outH > 2·(inW − outW)`; an
/// enlarged width counts as a negative reduction, so "width up, height down" always goes vertical first).
/// The rule was fitted black-box against Pillow 13.0.0 (its C source was not at hand): ~1400 random shapes up to
/// 200×200 (incl. several hundred on the boundary `inH − outH = 2·(inW − outW) + {−1, 0, 1}`), zero mismatches.
/// `Tests/Fixtures/images/resize_checks.json` pins both sides of the boundary.
/// Only matters when both passes run.
func resamplesVerticallyFirst(inWidth: Int, inHeight: Int, outWidth: Int, outHeight: Int) -> Bool {
    outHeight < inHeight && inHeight - outHeight > 2 * (inWidth - outWidth)
}

/// The resize with the pass order forced (tests use it to show that the order matters for a fixture).
func resizeBicubicAntialiased(_ image: RGBImage, width: Int, height: Int, verticalFirst: Bool) -> RGBImage {
    if width == image.width && height == image.height { return image }
    let vertical = ResampleWeights(inSize: image.height, outSize: height)
    if verticalFirst && width != image.width && height != image.height {
        // Vertical over every source column, then horizontal over every output row.
        let horizontal = ResampleWeights(inSize: image.width, outSize: width)
        let tall = resampleVertical(image.pixels, width: image.width, rowOffset: 0, outHeight: height,
                                    weights: vertical)
        let pixels = resampleHorizontal(tall, inWidth: image.width, rows: 0..<height, outWidth: width,
                                        weights: horizontal)
        return RGBImage(width: width, height: height, pixels: pixels)
    }
    var pixels = image.pixels
    var rowOffset = 0  // source row held in pixels[0]
    if width != image.width {
        let horizontal = ResampleWeights(inSize: image.width, outSize: width)
        let first = height != image.height ? vertical.start[0] : 0
        let last = height != image.height ? vertical.start[height - 1] + vertical.count[height - 1] : image.height
        pixels = resampleHorizontal(image.pixels, inWidth: image.width, rows: first..<last,
                                    outWidth: width, weights: horizontal)
        rowOffset = first
    }
    if height != image.height {
        pixels = resampleVertical(pixels, width: width, rowOffset: rowOffset, outHeight: height, weights: vertical)
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

/// Fixed-point filter taps for one axis: output `i` reads `count[i]` inputs from `start[i]` with weights
/// `weights[i * taps ..< i * taps + count[i]]`.
struct ResampleWeights {
    static let precisionBits = 22  // PIL: 32 − 8 − 2
    let start: [Int]
    let count: [Int]
    let taps: Int
    let weights: [Int32]

    /// PIL `bicubic_filter` (a = −0.5), same evaluation order.
    @inline(__always)
    static func bicubic(_ xIn: Double) -> Double {
        let a = -0.5
        let x = xIn < 0 ? -xIn : xIn
        if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
        if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0.0
    }

    init(inSize: Int, outSize: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 2.0 * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var start = [Int](repeating: 0, count: outSize)
        var count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * taps)
        var k = [Double](repeating: 0, count: taps)
        let one = Double(1 << ResampleWeights.precisionBits)
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            let inverse = 1.0 / filterScale
            let lo = max(0, Int(center - support + 0.5))  // Int() truncates toward zero, like C's (int)
            let hi = min(inSize, Int(center + support + 0.5))
            let n = max(0, min(hi - lo, taps))
            var sum = 0.0
            for j in 0..<n {
                let w = ResampleWeights.bicubic((Double(j + lo) - center + 0.5) * inverse)
                k[j] = w
                sum += w
            }
            for j in 0..<n {
                let w = sum != 0 ? k[j] / sum : k[j]
                weights[i * taps + j] = Int32(w < 0 ? (-0.5 + w * one) : (0.5 + w * one))
            }
            start[i] = lo
            count[i] = n
        }
        self.start = start
        self.count = count
        self.taps = taps
        self.weights = weights
    }
}

@inline(__always)
private func clip8(_ accumulator: Int32) -> UInt8 {
    UInt8(clamping: accumulator >> Int32(ResampleWeights.precisionBits))
}

/// Rows `rows` of an interleaved RGB image, filtered along x: `[rows.count, outWidth, 3]`.
private func resampleHorizontal(_ src: [UInt8], inWidth: Int, rows: Range<Int>, outWidth: Int,
                                weights: ResampleWeights) -> [UInt8] {
    let half = Int32(1 << (ResampleWeights.precisionBits - 1))
    let taps = weights.taps
    return [UInt8](unsafeUninitializedCapacity: rows.count * outWidth * 3) { out, initialized in
        src.withUnsafeBufferPointer { s in
            weights.weights.withUnsafeBufferPointer { k in
                weights.start.withUnsafeBufferPointer { start in
                    weights.count.withUnsafeBufferPointer { count in
                        let sp = s.baseAddress!, op = out.baseAddress!, kp = k.baseAddress!
                        for (r, y) in rows.enumerated() {
                            let inRow = sp + y * inWidth * 3
                            let outRow = op + r * outWidth * 3
                            for x in 0..<outWidth {
                                var p = inRow + start[x] * 3
                                let w = kp + x * taps
                                var r0 = half, g0 = half, b0 = half
                                for t in 0..<count[x] {
                                    let c = w[t]
                                    r0 &+= Int32(p[0]) &* c
                                    g0 &+= Int32(p[1]) &* c
                                    b0 &+= Int32(p[2]) &* c
                                    p += 3
                                }
                                outRow[3 * x] = clip8(r0)
                                outRow[3 * x + 1] = clip8(g0)
                                outRow[3 * x + 2] = clip8(b0)
                            }
                        }
                    }
                }
            }
        }
        initialized = rows.count * outWidth * 3
    }
}

/// Filters along y. `src` row 0 is source row `rowOffset`. Vectorises across the whole row.
private func resampleVertical(_ src: [UInt8], width: Int, rowOffset: Int, outHeight: Int,
                              weights: ResampleWeights) -> [UInt8] {
    let rowLength = width * 3
    let half = Int32(1 << (ResampleWeights.precisionBits - 1))
    var accumulator = [Int32](repeating: 0, count: rowLength)
    return [UInt8](unsafeUninitializedCapacity: outHeight * rowLength) { out, initialized in
        src.withUnsafeBufferPointer { s in
            accumulator.withUnsafeMutableBufferPointer { acc in
                let sp = s.baseAddress!, op = out.baseAddress!, ap = acc.baseAddress!
                for y in 0..<outHeight {
                    for i in 0..<rowLength { ap[i] = half }
                    let first = weights.start[y] - rowOffset
                    for t in 0..<weights.count[y] {
                        let c = weights.weights[y * weights.taps + t]
                        let row = sp + (first + t) * rowLength
                        for i in 0..<rowLength { ap[i] &+= Int32(row[i]) &* c }
                    }
                    let outRow = op + y * rowLength
                    for i in 0..<rowLength { outRow[i] = clip8(ap[i]) }
                }
            }
        }
        initialized = outHeight * rowLength
    }
}
