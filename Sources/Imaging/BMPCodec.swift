/// Uncompressed Windows BMP, written in Swift: 1/4/8-bit palette, 16-bit (5-5-5 or bit fields), 24-bit and
/// 32-bit (BGRX, or bit fields with an optional alpha mask, then composited on white). Bottom-up and top-down
/// rows. RLE and embedded JPEG/PNG compression are reported as unsupported.
enum BMPCodec {
    static func decode(_ b: UnsafeBufferPointer<UInt8>, maxPixels: Int) throws -> RGBImage {
        guard b.count >= 26 else { throw ImageError.corrupt("BMP: file too short for its headers") }
        let pixelOffset = Int(readLE32(b, 10))
        let headerSize = Int(readLE32(b, 14))
        var width: Int, height: Int, bpp: Int, compression = 0, paletteCount = 0
        var paletteEntrySize = 4
        if headerSize == 12 {  // OS/2 BITMAPCOREHEADER
            width = Int(readLE16(b, 18)); height = Int(Int16(bitPattern: readLE16(b, 20)))
            bpp = Int(readLE16(b, 24)); paletteEntrySize = 3
        } else if headerSize >= 40, b.count >= 14 + 40 {
            width = Int(Int32(bitPattern: readLE32(b, 18))); height = Int(Int32(bitPattern: readLE32(b, 22)))
            bpp = Int(readLE16(b, 28)); compression = Int(readLE32(b, 30)); paletteCount = Int(readLE32(b, 46))
        } else {
            throw ImageError.corrupt("BMP: unknown header size \(headerSize)")
        }
        let topDown = height < 0
        height = abs(height)
        try ImageDecoder.checkSize(.bmp, width: width, height: height, maxPixels: maxPixels)

        // Channel masks for 16/32-bit images.
        var masks: [UInt32] = bpp == 16 ? [0x7C00, 0x03E0, 0x001F, 0] : [0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0]
        switch compression {
        case 0: break
        case 3, 6:  // BI_BITFIELDS, BI_ALPHABITFIELDS: masks follow the 40-byte header (or sit inside V4/V5)
            let count = compression == 6 || headerSize >= 56 ? 4 : 3
            guard b.count >= 54 + 4 * count else { throw ImageError.corrupt("BMP: truncated bit-field masks") }
            masks = (0..<4).map { $0 < count ? readLE32(b, 54 + 4 * $0) : 0 }
        case 1, 2: throw ImageError.unsupportedFeature(format: .bmp, feature: "RLE compression")
        case 4, 5: throw ImageError.unsupportedFeature(format: .bmp, feature: "embedded JPEG/PNG data")
        default: throw ImageError.unsupportedFeature(format: .bmp, feature: "compression type \(compression)")
        }
        guard [1, 4, 8, 16, 24, 32].contains(bpp) else {
            throw ImageError.unsupportedFeature(format: .bmp, feature: "\(bpp) bits per pixel")
        }
        if bpp == 32 && compression == 0 { masks[3] = 0 }  // BGRX: the fourth byte is padding, as PIL reads it

        // Palette.
        var palette = [UInt8](repeating: 0, count: 256 * 3)
        if bpp <= 8 {
            let count = paletteCount > 0 ? min(paletteCount, 1 << bpp) : 1 << bpp
            let start = 14 + headerSize
            for i in 0..<count {
                let o = start + i * paletteEntrySize
                guard o + 2 < b.count else { break }
                palette[3 * i] = b[o + 2]; palette[3 * i + 1] = b[o + 1]; palette[3 * i + 2] = b[o]
            }
        }

        let rowBytes = ((width * bpp + 31) / 32) * 4
        let (needed, overflow) = rowBytes.multipliedReportingOverflow(by: height)
        guard !overflow, pixelOffset >= 0, pixelOffset <= b.count, b.count - pixelOffset >= needed else {
            throw ImageError.corrupt("BMP: pixel data truncated (need \(needed) bytes at offset \(pixelOffset))")
        }
        let hasAlpha = (bpp == 32 || bpp == 16) && masks[3] != 0
        var out = [UInt8](repeating: 0, count: width * height * 3)
        out.withUnsafeMutableBufferPointer { o in
            for y in 0..<height {
                let row = pixelOffset + (topDown ? y : height - 1 - y) * rowBytes
                let dst = y * width * 3
                switch bpp {
                case 24:
                    for x in 0..<width {
                        let s = row + 3 * x
                        o[dst + 3 * x] = b[s + 2]; o[dst + 3 * x + 1] = b[s + 1]; o[dst + 3 * x + 2] = b[s]
                    }
                case 16, 32:
                    for x in 0..<width {
                        let v = bpp == 16 ? UInt32(readLE16(b, row + 2 * x)) : readLE32(b, row + 4 * x)
                        let a = hasAlpha ? channel(v, masks[3]) : 255
                        for c in 0..<3 {
                            o[dst + 3 * x + c] = PixelConversion.compositeOnWhite(channel(v, masks[c]), alpha: a)
                        }
                    }
                default:
                    let perByte = 8 / bpp, mask = (1 << bpp) - 1
                    for x in 0..<width {
                        let byte = Int(b[row + x / perByte])
                        let index = (byte >> (8 - bpp * (x % perByte + 1))) & mask
                        o[dst + 3 * x] = palette[3 * index]
                        o[dst + 3 * x + 1] = palette[3 * index + 1]
                        o[dst + 3 * x + 2] = palette[3 * index + 2]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// The masked field of `value`, scaled to 0…255.
    private static func channel(_ value: UInt32, _ mask: UInt32) -> UInt8 {
        guard mask != 0 else { return 0 }
        let shift = mask.trailingZeroBitCount
        let maxValue = mask >> shift
        let v = (value & mask) >> shift
        return UInt8(truncatingIfNeeded: (UInt64(v) * 255) / UInt64(maxValue))
    }
}
