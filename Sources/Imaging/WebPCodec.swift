import CImageCodecs

/// WebP through libwebp. Still images decode straight to RGB(A); animated ones through `WebPAnimDecoder`
/// (first frame composed on libwebp's transparent canvas), as PIL does.
enum WebPCodec {
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws -> RGBImage {
        guard let base = bytes.baseAddress else { throw ImageError.empty }
        var features = WebPBitstreamFeatures()
        let status = WebPGetFeaturesInternal(base, bytes.count, &features, Int32(WEBP_DECODER_ABI_VERSION))
        guard status == VP8_STATUS_OK else {
            throw ImageError.corrupt("WebP: cannot read the header (\(describe(status)))")
        }
        let width = Int(features.width), height = Int(features.height)
        try ImageDecoder.checkSize(.webp, width: width, height: height, maxPixels: maxPixels)
        if features.has_animation != 0 {
            return try decodeFirstFrame(bytes, maxPixels: maxPixels)
        }

        let channels = features.has_alpha != 0 ? 4 : 3
        let stride = width * channels
        var ok = false
        let samples = [UInt8](unsafeUninitializedCapacity: stride * height) { buffer, count in
            let size = stride * height
            let result = channels == 4
                ? WebPDecodeRGBAInto(base, bytes.count, buffer.baseAddress, size, Int32(stride))
                : WebPDecodeRGBInto(base, bytes.count, buffer.baseAddress, size, Int32(stride))
            ok = result != nil
            count = ok ? size : 0
        }
        guard ok else { throw ImageError.corrupt("WebP: the bitstream could not be decoded (damaged or truncated data)") }
        if channels == 3 { return RGBImage(width: width, height: height, pixels: samples) }
        let rgb = samples.withUnsafeBufferPointer {
            PixelConversion.toRGB($0, channels: 4, pixelCount: width * height)
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    private static func decodeFirstFrame(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws -> RGBImage {
        var options = WebPAnimDecoderOptions()
        guard WebPAnimDecoderOptionsInitInternal(&options, Int32(WEBP_DEMUX_ABI_VERSION)) != 0 else {
            throw ImageError.corrupt("WebP: libwebp version mismatch")
        }
        options.color_mode = MODE_RGBA
        options.use_threads = 0
        var webpData = WebPData(bytes: bytes.baseAddress, size: bytes.count)
        guard let decoder = WebPAnimDecoderNewInternal(&webpData, &options, Int32(WEBP_DEMUX_ABI_VERSION)) else {
            throw ImageError.corrupt("WebP: the animation container could not be parsed")
        }
        defer { WebPAnimDecoderDelete(decoder) }
        var info = WebPAnimInfo()
        guard WebPAnimDecoderGetInfo(decoder, &info) != 0 else {
            throw ImageError.corrupt("WebP: the animation header could not be read")
        }
        let width = Int(info.canvas_width), height = Int(info.canvas_height)
        try ImageDecoder.checkSize(.webp, width: width, height: height, maxPixels: maxPixels)
        guard info.frame_count > 0 else { throw ImageError.corrupt("WebP: the animation has no frames") }
        var frame: UnsafeMutablePointer<UInt8>?
        var timestamp: Int32 = 0
        guard WebPAnimDecoderGetNext(decoder, &frame, &timestamp) != 0, let frame else {
            throw ImageError.corrupt("WebP: the first animation frame could not be decoded")
        }
        let rgb = PixelConversion.toRGB(UnsafeBufferPointer(start: frame, count: width * height * 4),
                                        channels: 4, pixelCount: width * height)
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    private static func describe(_ status: VP8StatusCode) -> String {
        switch status {
        case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data, the file is truncated"
        case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error"
        case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature"
        case VP8_STATUS_INVALID_PARAM: return "invalid parameter"
        case VP8_STATUS_OUT_OF_MEMORY: return "out of memory"
        default: return "status \(status.rawValue)"
        }
    }
}
