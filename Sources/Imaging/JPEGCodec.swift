import CImageCodecs

/// JPEG through libjpeg-turbo (C glue for its setjmp error handling). Default decoder settings (ISLOW IDCT,
/// fancy upsampling) are the ones PIL uses, so output matches PIL up to libjpeg-turbo version differences.
enum JPEGCodec {
    /// `scaleDenominator` (1, 2, 4 or 8) decodes at that fraction of the size, through libjpeg's scaled IDCT.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int, scaleDenominator: Int = 1) throws -> RGBImage {
        var handle: OpaquePointer?
        var info = pl_jpeg_info()
        var message = [CChar](repeating: 0, count: Int(PL_ERR_LEN))
        guard pl_jpeg_open(bytes.baseAddress, bytes.count, &handle, &info, &message) == 0, let handle else {
            throw ImageError.corrupt("JPEG: \(cString(message))")
        }
        defer { pl_jpeg_close(handle) }
        var width = Int(info.width), height = Int(info.height)
        let channels = Int(info.channels)
        try ImageDecoder.checkSize(.jpeg, width: width, height: height, maxPixels: maxPixels)
        if scaleDenominator > 1 {
            var scaledWidth: UInt32 = 0, scaledHeight: UInt32 = 0
            guard pl_jpeg_set_scale(handle, Int32(scaleDenominator), &scaledWidth, &scaledHeight, &message) == 0 else {
                throw ImageError.corrupt("JPEG: \(cString(message))")
            }
            width = Int(scaledWidth)
            height = Int(scaledHeight)
        }

        var failed = false
        let samples = [UInt8](unsafeUninitializedCapacity: width * height * channels) { buffer, count in
            failed = pl_jpeg_read(handle, buffer.baseAddress, &message) != 0
            count = failed ? 0 : width * height * channels
        }
        if failed {
            throw ImageError.corrupt("JPEG: \(cString(message))")
        }
        if info.color_model == Int32(PL_JPEG_CMYK) {
            let rgb = samples.withUnsafeBufferPointer {
                PixelConversion.cmykToRGB($0, inverted: info.adobe_inverted != 0, pixelCount: width * height)
            }
            return RGBImage(width: width, height: height, pixels: rgb)
        }
        return RGBImage(width: width, height: height, pixels: samples)
    }
}
