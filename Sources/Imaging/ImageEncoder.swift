import CImageCodecs
import Foundation

/// Why an image could not be written.
public struct ImageEncodingError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Writes `RGBImage`s as PNG (lossless) or JPEG through the system's libpng and libjpeg, the same libraries the
/// decoder reads with. `postlens analyze --draw` saves its annotated images with it.
public enum ImageEncoder {
    /// The format a file name asks for: `.jpg`/`.jpeg` → JPEG, anything else → PNG.
    public static func format(forPath path: String) -> ImageFormat {
        let ext = (path as NSString).pathExtension.lowercased()
        return ext == "jpg" || ext == "jpeg" ? .jpeg : .png
    }

    /// Encodes `image` as PNG, or as JPEG at `quality` (1–100). Other formats are not written.
    public static func encode(_ image: RGBImage, as format: ImageFormat, quality: Int = 90) throws -> Data {
        guard image.width > 0, image.height > 0 else { throw ImageEncodingError("cannot write an empty \(image.width)x\(image.height) image") }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: Int(PL_ERR_LEN))
        let status: Int32 = image.pixels.withUnsafeBufferPointer { pixels in
            switch format {
            case .png:
                return pl_png_encode_rgb(pixels.baseAddress, UInt32(image.width), UInt32(image.height), &out, &size, &message)
            case .jpeg:
                return pl_jpeg_encode_rgb(pixels.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality), &out, &size, &message)
            default:
                return -2
            }
        }
        if status == -2 { throw ImageEncodingError("writing \(format.rawValue.uppercased()) is not supported; use PNG or JPEG") }
        guard status == 0, let out else { throw ImageEncodingError("\(format.rawValue.uppercased()): \(cString(message))") }
        defer { pl_encoded_free(out) }
        return Data(bytes: out, count: size)
    }
}
