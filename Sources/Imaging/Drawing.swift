/// An 8-bit RGB colour.
public struct RGBColor: Sendable, Equatable, Hashable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }
    public static let white = RGBColor(255, 255, 255)
    public static let black = RGBColor(0, 0, 0)
}

/// Plain raster drawing on an `RGBImage`: axis-aligned rectangles (outlined or filled, clipped to the image) and
/// text in `BitmapFont`, scaled by whole pixels. Enough to annotate an image with boxes and labels; no
/// antialiasing, so every drawn pixel has exactly the colour asked for (tests check pixels).
extension RGBImage {
    /// Fills the pixels `x0..<x1` × `y0..<y1`, clipped to the image.
    public mutating func fill(x0: Int, y0: Int, x1: Int, y1: Int, color: RGBColor) {
        let left = max(0, x0), right = min(width, x1), top = max(0, y0), bottom = min(height, y1)
        guard left < right, top < bottom else { return }
        pixels.withUnsafeMutableBufferPointer { p in
            for y in top..<bottom {
                var i = (y * width + left) * 3
                for _ in left..<right {
                    p[i] = color.r
                    p[i + 1] = color.g
                    p[i + 2] = color.b
                    i += 3
                }
            }
        }
    }

    /// Outlines the box whose outer edges are `x0..<x1` × `y0..<y1` with lines `thickness` pixels wide drawn inside
    /// it (so the outline never covers pixels outside the box), clipped to the image.
    public mutating func strokeRectangle(x0: Int, y0: Int, x1: Int, y1: Int, thickness: Int, color: RGBColor) {
        guard x1 > x0, y1 > y0 else { return }
        let t = max(1, min(thickness, (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2))
        fill(x0: x0, y0: y0, x1: x1, y1: y0 + t, color: color)          // top
        fill(x0: x0, y0: y1 - t, x1: x1, y1: y1, color: color)          // bottom
        fill(x0: x0, y0: y0 + t, x1: x0 + t, y1: y1 - t, color: color)  // left
        fill(x0: x1 - t, y0: y0 + t, x1: x1, y1: y1 - t, color: color)  // right
    }

    /// The size `text` takes at `scale` (pixels per font cell), on one line.
    public static func textSize(_ text: String, scale: Int) -> (width: Int, height: Int) {
        let count = text.count
        guard count > 0 else { return (0, 0) }
        return ((count * BitmapFont.advance - 1) * scale, BitmapFont.glyphHeight * scale)
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font cell `scale` × `scale` pixels. Characters the
    /// font lacks are drawn as `?`.
    public mutating func draw(text: String, x: Int, y: Int, scale: Int, color: RGBColor) {
        let s = max(1, scale)
        var penX = x
        for character in text {
            let rows = BitmapFont.rows(for: character) ?? BitmapFont.rows(for: "?")!
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    fill(x0: penX + column * s, y0: y + row * s, x1: penX + (column + 1) * s, y1: y + (row + 1) * s, color: color)
                }
            }
            penX += BitmapFont.advance * s
        }
    }
}
