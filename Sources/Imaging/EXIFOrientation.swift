/// Reads the EXIF orientation tag (0x0112) from the places PIL's `getexif()` looks, and applies it the way
/// `PIL.ImageOps.exif_transpose` does. Any malformed EXIF is ignored (orientation 1), never an error.
enum EXIFOrientation {
    /// JPEG: the first APP1 segment starting with "Exif\0\0".
    static func fromJPEG(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 2
        while i + 4 <= b.count, b[i] == 0xFF {
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0xDA || marker == 0xD9 { break }  // start of scan / end of image
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { i += 2; continue }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard length >= 2, i + 2 + length <= b.count else { break }
            let start = i + 4
            if marker == 0xE1, length >= 8, Array(b[start..<start + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                return fromTIFF(UnsafeBufferPointer(rebasing: b[(start + 6)..<(i + 2 + length)]))
            }
            i += 2 + length
        }
        return 1
    }

    /// PNG: an `eXIf` chunk anywhere before IEND.
    static func fromPNG(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 8
        while i + 12 <= b.count {
            let length = Int(readBE32(b, i))
            let type = Array(b[(i + 4)..<(i + 8)])
            guard length >= 0, length <= b.count - i - 12 else { break }
            if type == Array("eXIf".utf8) {
                var start = i + 8
                if length >= 6, Array(b[start..<start + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] { start += 6 }
                return fromTIFF(UnsafeBufferPointer(rebasing: b[start..<(i + 8 + length)]))
            }
            if type == Array("IEND".utf8) { break }
            i += 12 + length
        }
        return 1
    }

    /// WebP: an `EXIF` RIFF chunk (extended format).
    static func fromWebP(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 12
        while i + 8 <= b.count {
            let size = Int(readLE32(b, i + 4))
            guard size <= b.count - i - 8 else { break }
            if Array(b[i..<(i + 4)]) == Array("EXIF".utf8) {
                var start = i + 8
                if size >= 6, Array(b[start..<start + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] { start += 6 }
                return fromTIFF(UnsafeBufferPointer(rebasing: b[start..<(i + 8 + size)]))
            }
            i += 8 + size + (size & 1)
        }
        return 1
    }

    /// A TIFF structure ("II*\0" or "MM\0*"): the orientation entry of IFD0, 1…8, or 1.
    static func fromTIFF(_ t: UnsafeBufferPointer<UInt8>) -> Int {
        guard t.count >= 8 else { return 1 }
        let little: Bool
        if t[0] == 0x49 && t[1] == 0x49 { little = true } else if t[0] == 0x4D && t[1] == 0x4D { little = false } else { return 1 }
        func u16(_ o: Int) -> Int { little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1]) }
        func u32(_ o: Int) -> Int { little ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2) }
        guard u16(2) == 42 else { return 1 }
        let ifd = u32(4)
        guard ifd >= 8, ifd + 2 <= t.count else { return 1 }
        let count = u16(ifd)
        for e in 0..<count {
            let entry = ifd + 2 + 12 * e
            guard entry + 12 <= t.count else { break }
            if u16(entry) == 0x0112 {
                let type = u16(entry + 2)
                let value = type == 3 ? u16(entry + 8) : (type == 4 ? u32(entry + 8) : 1)
                return (1...8).contains(value) ? value : 1
            }
        }
        return 1
    }
}

extension RGBImage {
    /// The upright image for EXIF orientation 1…8 (PIL `exif_transpose`: 2 mirror, 3 rotate 180°, 4 flip,
    /// 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise).
    func applyingEXIFOrientation(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        let w = width, h = height
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: ow * oh * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let sx: Int, sy: Int
                        switch orientation {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)
                        }
                        let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
