import CImageCodecs

/// GIF through giflib: the first image frame, placed on the logical screen. Pixels with the frame's transparent
/// index (Graphics Control Extension) become white; screen area outside the first frame is transparent (white)
/// when the frame declares transparency and otherwise takes palette entry 0 — what PIL shows for frame 0.
enum GIFCodec {
    /// The bytes giflib pulls through its read callback.
    private final class Source {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0
        init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws -> RGBImage {
        let source = Source(bytes)
        var error: Int32 = 0
        let opened = withExtendedLifetime(source) { () -> UnsafeMutablePointer<GifFileType>? in
            DGifOpen(Unmanaged.passUnretained(source).toOpaque(), { gif, out, length in
                guard let gif, let user = gif.pointee.UserData, let out, length > 0 else { return 0 }
                let source = Unmanaged<Source>.fromOpaque(user).takeUnretainedValue()
                let n = min(Int(length), source.bytes.count - source.offset)
                if n > 0 {
                    out.update(from: source.bytes.baseAddress! + source.offset, count: n)
                    source.offset += n
                }
                return Int32(n)
            }, &error)
        }
        guard let gif = opened else { throw ImageError.corrupt("GIF: \(message(error))") }
        defer { _ = withExtendedLifetime(source) { DGifCloseFile(gif, &error) } }

        let screenWidth = Int(gif.pointee.SWidth), screenHeight = Int(gif.pointee.SHeight)
        try ImageDecoder.checkSize(.gif, width: screenWidth, height: screenHeight, maxPixels: maxPixels)

        var transparentIndex = -1
        while true {
            var record = UNDEFINED_RECORD_TYPE
            guard DGifGetRecordType(gif, &record) == GIF_OK else {
                throw ImageError.corrupt("GIF: \(message(gif.pointee.Error))")
            }
            switch record {
            case EXTENSION_RECORD_TYPE:
                var code: Int32 = 0
                var block: UnsafeMutablePointer<GifByteType>?
                guard DGifGetExtension(gif, &code, &block) == GIF_OK else {
                    throw ImageError.corrupt("GIF: \(message(gif.pointee.Error))")
                }
                // Graphics control block: [size=4, flags, delay lo, delay hi, transparent index].
                if code == GRAPHICS_EXT_FUNC_CODE, let b = block, b[0] >= 4 {
                    transparentIndex = (b[1] & 1) != 0 ? Int(b[4]) : -1
                }
                while block != nil {
                    guard DGifGetExtensionNext(gif, &block) == GIF_OK else {
                        throw ImageError.corrupt("GIF: \(message(gif.pointee.Error))")
                    }
                }
            case IMAGE_DESC_RECORD_TYPE:
                guard DGifGetImageDesc(gif) == GIF_OK else {
                    throw ImageError.corrupt("GIF: \(message(gif.pointee.Error))")
                }
                return try readFrame(gif, screenWidth: screenWidth, screenHeight: screenHeight,
                                     transparentIndex: transparentIndex, maxPixels: maxPixels)
            case TERMINATE_RECORD_TYPE:
                throw ImageError.corrupt("GIF: the file contains no image frame")
            default:
                throw ImageError.corrupt("GIF: unexpected record type \(record.rawValue)")
            }
        }
    }

    private static func readFrame(_ gif: UnsafeMutablePointer<GifFileType>, screenWidth: Int, screenHeight: Int,
                                  transparentIndex: Int, maxPixels: Int) throws -> RGBImage {
        let desc = gif.pointee.Image
        let left = Int(desc.Left), top = Int(desc.Top), width = Int(desc.Width), height = Int(desc.Height)
        try ImageDecoder.checkSize(.gif, width: width, height: height, maxPixels: maxPixels)
        guard let map = desc.ColorMap ?? gif.pointee.SColorMap, let colors = map.pointee.Colors else {
            throw ImageError.corrupt("GIF: the first frame has no colour table")
        }
        let colorCount = Int(map.pointee.ColorCount)

        // Frame indices, de-interlaced.
        var indices = [UInt8](repeating: 0, count: width * height)
        let ok = indices.withUnsafeMutableBufferPointer { idx -> Bool in
            let rows: [Int]
            if desc.Interlace {
                rows = Array(stride(from: 0, to: height, by: 8)) + Array(stride(from: 4, to: height, by: 8))
                    + Array(stride(from: 2, to: height, by: 4)) + Array(stride(from: 1, to: height, by: 2))
            } else {
                rows = Array(0..<height)
            }
            for y in rows where DGifGetLine(gif, idx.baseAddress! + y * width, Int32(width)) != GIF_OK {
                return false
            }
            return true
        }
        guard ok else { throw ImageError.corrupt("GIF: \(message(gif.pointee.Error))") }

        // RGB lookup per palette index; the transparent one is white.
        var lut = [UInt8](repeating: 0, count: 256 * 3)
        for i in 0..<256 {
            if i == transparentIndex {
                lut[3 * i] = 255; lut[3 * i + 1] = 255; lut[3 * i + 2] = 255
            } else if i < colorCount {
                let c = colors[i]
                lut[3 * i] = c.Red; lut[3 * i + 1] = c.Green; lut[3 * i + 2] = c.Blue
            }
        }
        let fill = transparentIndex >= 0 ? transparentIndex : 0
        var pixels = [UInt8](repeating: 0, count: screenWidth * screenHeight * 3)
        for i in 0..<(screenWidth * screenHeight) {
            pixels[3 * i] = lut[3 * fill]; pixels[3 * i + 1] = lut[3 * fill + 1]; pixels[3 * i + 2] = lut[3 * fill + 2]
        }
        for y in 0..<height where top + y < screenHeight {
            for x in 0..<width where left + x < screenWidth {
                let p = Int(indices[y * width + x]) * 3
                let o = ((top + y) * screenWidth + left + x) * 3
                pixels[o] = lut[p]; pixels[o + 1] = lut[p + 1]; pixels[o + 2] = lut[p + 2]
            }
        }
        return RGBImage(width: screenWidth, height: screenHeight, pixels: pixels)
    }

    private static func message(_ code: Int32) -> String {
        guard let text = GifErrorString(code) else { return "giflib error \(code)" }
        return String(cString: text)
    }
}
