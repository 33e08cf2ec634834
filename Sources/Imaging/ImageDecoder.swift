import CImageCodecs
import Foundation

/// Decodes JPEG, PNG, WebP, GIF and BMP into upright RGB, following what transformers' `load_image` +
/// `convert_to_rgb` produce with PIL (qwen3vl-spec.md §2.2):
/// - the format is detected from magic bytes, never from a file name or a claimed MIME type;
/// - the EXIF orientation (JPEG APP1 `Exif`, PNG `eXIf`, WebP `EXIF`) is applied, like `ImageOps.exif_transpose`;
/// - alpha and palette transparency are composited onto opaque white with PIL's `alpha_composite` arithmetic;
/// - grayscale is replicated, palettes are expanded, 16-bit samples keep their high byte (as PIL does), CMYK uses
///   PIL's `cmyk2rgb`;
/// - GIF and animated WebP yield their first frame;
/// - the pixel limit is checked from the header before any pixel buffer is allocated.
public enum ImageDecoder {
    /// Decompression-bomb limit: 100 megapixels. The largest camera sensors in common use are ≤ 100 MP, and the
    /// model never needs more than 16.7 MP (max_pixels). Decoding 100 MP needs ~400 MB of transient buffers
    /// (RGBA decode + RGB copy), which the server can still afford; a crafted 100 kB PNG announcing
    /// 100000×100000 (10 GP, 40 GB) is refused before allocation. PIL's own guard sits at the same scale
    /// (`MAX_IMAGE_PIXELS` ≈ 89 MP warns, twice that raises).
    public static let defaultMaxPixels: Int = 100_000_000

    /// The container format from the leading magic bytes, or nil.
    public static func sniff(_ data: Data) -> ImageFormat? {
        let head = [UInt8](data.prefix(12))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<offset + magic.count]) == magic
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("BM".utf8)) && head.count >= 6 { return .bmp }
        return nil
    }

    /// Decodes `data` to upright RGB. Throws ``ImageError`` for every input problem.
    ///
    /// `reducingTo` is the size (upright) the caller will resize the image to. A JPEG at least twice that size in
    /// each direction is then decoded at 1/2, 1/4 or 1/8 scale by libjpeg's scaled IDCT — still at least twice the
    /// target in each direction, so the antialiased resize that follows has the detail it needs — and a 100 MP photo
    /// never occupies 300 MB on its way to a 1 MP budget. Other formats decode at full size (within `maxPixels`).
    public static func decode(_ data: Data, maxPixels: Int = defaultMaxPixels,
                              reducingTo target: (width: Int, height: Int)? = nil) throws -> RGBImage {
        if data.isEmpty { throw ImageError.empty }
        guard let format = sniff(data) else { throw ImageError.unsupportedFormat }
        return try data.withUnsafeBytes { raw -> RGBImage in
            let bytes = raw.bindMemory(to: UInt8.self)
            let image: RGBImage
            let orientation: Int
            switch format {
            case .jpeg:
                orientation = EXIFOrientation.fromJPEG(bytes)
                var denominator = 1
                if let target, let stored = try? storedSize(.jpeg, bytes) {
                    // The target is upright; orientations 5–8 swap the stored sides.
                    let (tw, th) = orientation >= 5 ? (target.height, target.width) : (target.width, target.height)
                    for d in [8, 4, 2] where (stored.width + d - 1) / d >= 2 * tw && (stored.height + d - 1) / d >= 2 * th {
                        denominator = d
                        break
                    }
                }
                image = try JPEGCodec.decode(bytes, maxPixels: maxPixels, scaleDenominator: denominator)
            case .png:
                image = try PNGCodec.decode(bytes, maxPixels: maxPixels)
                orientation = EXIFOrientation.fromPNG(bytes)
            case .webp:
                image = try WebPCodec.decode(bytes, maxPixels: maxPixels)
                orientation = EXIFOrientation.fromWebP(bytes)
            case .gif:
                image = try GIFCodec.decode(bytes, maxPixels: maxPixels)
                orientation = 1
            case .bmp:
                image = try BMPCodec.decode(bytes, maxPixels: maxPixels)
                orientation = 1
            }
            return image.applyingEXIFOrientation(orientation)
        }
    }

    /// Throws unless `width × height` is positive and within `maxPixels`.
    static func checkSize(_ format: ImageFormat, width: Int, height: Int, maxPixels: Int) throws {
        guard width > 0, height > 0 else {
            throw ImageError.corrupt("\(format.rawValue.uppercased()) header declares an empty image (\(width)x\(height))")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > maxPixels {
            throw ImageError.tooLarge(width: width, height: height, limit: maxPixels)
        }
    }
}

// MARK: - Sample conversion (PIL's convert / alpha_composite arithmetic)

enum PixelConversion {
    /// PIL `alpha_composite(white, src)` for one channel, then alpha dropped. With an opaque white background the
    /// PIL fixed-point formula (PRECISION_BITS 7) reduces to this exactly.
    @inline(__always)
    static func compositeOnWhite(_ value: UInt8, alpha: UInt8) -> UInt8 {
        if alpha == 0 { return 255 }
        let a = UInt32(alpha)
        let coef1 = a << 7
        let coef2 = (255 - a) << 7
        let tmp = UInt32(value) * coef1 + 255 * coef2 + (0x80 << 7)
        return UInt8(truncatingIfNeeded: (((tmp >> 8) + tmp) >> 8) >> 7)
    }

    /// Interleaved 1-, 2-, 3- or 4-channel samples (gray, gray+alpha, RGB, RGBA) to RGB.
    static func toRGB(_ src: UnsafeBufferPointer<UInt8>, channels: Int, pixelCount: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { out, count in
            guard let s = src.baseAddress, let o = out.baseAddress else { count = 0; return }
            switch channels {
            case 1:
                for i in 0..<pixelCount {
                    let v = s[i]
                    o[3 * i] = v; o[3 * i + 1] = v; o[3 * i + 2] = v
                }
            case 2:
                for i in 0..<pixelCount {
                    let v = compositeOnWhite(s[2 * i], alpha: s[2 * i + 1])
                    o[3 * i] = v; o[3 * i + 1] = v; o[3 * i + 2] = v
                }
            case 3:
                o.update(from: s, count: pixelCount * 3)
            default:
                for i in 0..<pixelCount {
                    let a = s[4 * i + 3]
                    o[3 * i] = compositeOnWhite(s[4 * i], alpha: a)
                    o[3 * i + 1] = compositeOnWhite(s[4 * i + 1], alpha: a)
                    o[3 * i + 2] = compositeOnWhite(s[4 * i + 2], alpha: a)
                }
            }
            count = pixelCount * 3
        }
    }

    /// PIL `cmyk2rgb`: `255 − k` scaled by `255 − c` (MULDIV255 rounding). `inverted` undoes Adobe's inversion.
    static func cmykToRGB(_ src: UnsafeBufferPointer<UInt8>, inverted: Bool, pixelCount: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { out, count in
            guard let s = src.baseAddress, let o = out.baseAddress else { count = 0; return }
            let flip: UInt8 = inverted ? 255 : 0
            for i in 0..<pixelCount {
                let nk = Int(255 - (s[4 * i + 3] ^ flip))
                for c in 0..<3 {
                    let tmp = Int(s[4 * i + c] ^ flip) * nk + 128
                    let v = nk - (((tmp >> 8) + tmp) >> 8)
                    o[3 * i + c] = UInt8(clamping: v)
                }
            }
            count = pixelCount * 3
        }
    }
}
