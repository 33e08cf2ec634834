// The Imaging module: bytes in, upright 8-bit RGB out, plus PIL-compatible resampling.
//
//   ImageDecoder.decode(Data) ─► sniff magic bytes ─► codec (JPEG, PNG, WebP, GIF, BMP)
//                              ─► expand to RGB (alpha composited on white) ─► EXIF orientation ─► RGBImage
//   resizeBicubicAntialiased(RGBImage, width:, height:)  PIL's Image.resize(BICUBIC)

/// An 8-bit RGB image, interleaved and row-major: `pixels[(y * width + x) * 3 + c]`.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `[height, width, 3]` samples, R G B.
    public var pixels: [UInt8]

    /// Traps if `pixels.count != width * height * 3` (a programmer error, never an input error).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "negative image size \(width)x\(height)")
        precondition(pixels.count == width * height * 3,
                     "RGBImage \(width)x\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Container formats recognised by ``ImageDecoder/sniff(_:)``.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg, png, webp, gif, bmp
}

/// Why an image could not be decoded. Every input problem surfaces as one of these; nothing traps.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The data holds no bytes at all.
    case empty
    /// The leading bytes match none of JPEG, PNG, WebP, GIF or BMP.
    case unsupportedFormat
    /// A recognised format using a feature this decoder does not implement (e.g. RLE-compressed BMP).
    case unsupportedFeature(format: ImageFormat, feature: String)
    /// The file is damaged or truncated; the message says where, in the codec's words.
    case corrupt(String)
    /// The header announces more pixels than allowed (checked before any pixel is decoded).
    case tooLarge(width: Int, height: Int, limit: Int)

    public var description: String {
        switch self {
        case .empty:
            return "image data is empty"
        case .unsupportedFormat:
            return "unsupported image format: expected JPEG, PNG, WebP, GIF or BMP data (detected from the file's "
                + "first bytes, not its name or MIME type)"
        case let .unsupportedFeature(format, feature):
            return "unsupported \(format.rawValue.uppercased()) feature: \(feature)"
        case let .corrupt(message):
            return "corrupt image: \(message)"
        case let .tooLarge(width, height, limit):
            return "image too large: \(width)x\(height) = \(width.multipliedReportingOverflow(by: height).partialValue) "
                + "pixels exceeds the limit of \(limit) pixels"
        }
    }
}
