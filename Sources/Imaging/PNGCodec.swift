import CImageCodecs

/// PNG through libpng (C glue for its setjmp error handling). No gamma or ICC transforms, like PIL.
/// 16-bit samples keep their high byte, which is what PIL does for 16-bit RGB(A). Deliberate deviation: PIL opens
/// 16-bit grayscale as mode "I;16" and its convert("RGB") clips values above 255 to white (a 16-bit gray photo
/// becomes almost entirely white); we take the high byte there too.
enum PNGCodec {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws -> RGBImage {
        // Check the announced size from IHDR ourselves first: libpng would otherwise happily start on a header
        // that promises 10 gigapixels.
        if bytes.count >= 24 {
            let width = Int(readBE32(bytes, 16)), height = Int(readBE32(bytes, 20))
            if width > 0, height > 0 {
                try ImageDecoder.checkSize(.png, width: width, height: height, maxPixels: maxPixels)
            }
        }
        var handle: OpaquePointer?
        var info = pl_png_info()
        var message = [CChar](repeating: 0, count: Int(PL_ERR_LEN))
        guard pl_png_open(bytes.baseAddress, bytes.count, &handle, &info, &message) == 0, let handle else {
            throw ImageError.corrupt("PNG: \(cString(message))")
        }
        defer { pl_png_close(handle) }
        let width = Int(info.width), height = Int(info.height), channels = Int(info.channels)
        try ImageDecoder.checkSize(.png, width: width, height: height, maxPixels: maxPixels)

        var failed = false
        let samples = [UInt8](unsafeUninitializedCapacity: width * height * channels) { buffer, count in
            failed = pl_png_read(handle, buffer.baseAddress, &message) != 0
            count = failed ? 0 : width * height * channels
        }
        if failed { throw ImageError.corrupt("PNG: \(cString(message))") }
        if channels == 3 { return RGBImage(width: width, height: height, pixels: samples) }
        let rgb = samples.withUnsafeBufferPointer {
            PixelConversion.toRGB($0, channels: channels, pixelCount: width * height)
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }
}

@inline(__always)
func readBE32(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
    UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}

@inline(__always)
func readLE32(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

@inline(__always)
func readLE16(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt16 {
    UInt16(b[i]) | UInt16(b[i + 1]) << 8
}

/// A NUL-terminated C message buffer as a Swift string.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
