import CImageCodecs
import Foundation

/// What an image's header says, read without decoding a pixel: enough to refuse an image (or a request's images
/// together) by size before any buffer is allocated, and to plan the decode.
public struct ImageHeader: Sendable, Equatable {
    public let format: ImageFormat
    /// Upright size (EXIF orientation applied).
    public let width: Int
    public let height: Int

    public var pixels: Int { width.multipliedReportingOverflow(by: height).partialValue }
}

extension ImageDecoder {
    /// Reads the format and upright size from the header. Throws ``ImageError`` when the bytes are no supported
    /// image or the header is unreadable; the size is not checked against any limit here.
    public static func header(_ data: Data) throws -> ImageHeader {
        if data.isEmpty { throw ImageError.empty }
        guard let format = sniff(data) else { throw ImageError.unsupportedFormat }
        return try data.withUnsafeBytes { raw -> ImageHeader in
            let bytes = raw.bindMemory(to: UInt8.self)
            let size = try storedSize(format, bytes)
            let orientation: Int
            switch format {
            case .jpeg: orientation = EXIFOrientation.fromJPEG(bytes)
            case .png: orientation = EXIFOrientation.fromPNG(bytes)
            case .webp: orientation = EXIFOrientation.fromWebP(bytes)
            case .gif, .bmp: orientation = 1
            }
            return orientation >= 5 ? ImageHeader(format: format, width: size.height, height: size.width)
                : ImageHeader(format: format, width: size.width, height: size.height)
        }
    }

    /// The size as stored (before orientation), from the header alone.
    static func storedSize(_ format: ImageFormat, _ b: UnsafeBufferPointer<UInt8>) throws -> (width: Int, height: Int) {
        switch format {
        case .jpeg:
            var handle: OpaquePointer?
            var info = pl_jpeg_info()
            var message = [CChar](repeating: 0, count: Int(PL_ERR_LEN))
            guard pl_jpeg_open(b.baseAddress, b.count, &handle, &info, &message) == 0, let handle else {
                throw ImageError.corrupt("JPEG: \(cString(message))")
            }
            pl_jpeg_close(handle)
            return (Int(info.width), Int(info.height))
        case .png:
            guard b.count >= 24 else { throw ImageError.corrupt("PNG: file too short for its header") }
            return (Int(readBE32(b, 16)), Int(readBE32(b, 20)))
        case .webp:
            var features = WebPBitstreamFeatures()
            guard let base = b.baseAddress,
                  WebPGetFeaturesInternal(base, b.count, &features, Int32(WEBP_DECODER_ABI_VERSION)) == VP8_STATUS_OK else {
                throw ImageError.corrupt("WebP: cannot read the header")
            }
            return (Int(features.width), Int(features.height))
        case .gif:
            guard b.count >= 10 else { throw ImageError.corrupt("GIF: file too short for its header") }
            return (Int(readLE16(b, 6)), Int(readLE16(b, 8)))
        case .bmp:
            guard b.count >= 26 else { throw ImageError.corrupt("BMP: file too short for its headers") }
            if readLE32(b, 14) == 12 { return (Int(readLE16(b, 18)), abs(Int(Int16(bitPattern: readLE16(b, 20))))) }
            return (Int(Int32(bitPattern: readLE32(b, 18))), abs(Int(Int32(bitPattern: readLE32(b, 22)))))
        }
    }
}
