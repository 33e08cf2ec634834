import Foundation
import Imaging

/// Dense-text OCR for long screenshots and posters: the image is cut into overlapping tiles that the
/// model sees at native resolution (no downscaling below the tile's own size), each tile is OCR'd,
/// and the per-tile lines are merged with the lines repeated across overlaps removed.
public enum DenseText {
    /// A tile: a rectangle of the source image, in source pixels.
    public struct Tile: Sendable, Equatable {
        public var x: Int, y: Int, width: Int, height: Int
        public var row: Int, column: Int
        public var maxX: Int { x + width }
        public var maxY: Int { y + height }
    }

    public struct Configuration: Sendable, Equatable {
        /// Longest tile side in model pixels (a 1024×1024 tile is 1024 image tokens at 32 px per token).
        public var tileSize = 1024
        /// Smallest overlap between neighbouring tiles, in model pixels; a text line up to this tall
        /// is whole in at least one tile.
        public var minOverlap = 128
        /// Most tiles per image; a larger image is scaled down (uniformly) until its grid fits.
        public var maxTiles = 12
        public init(tileSize: Int = 1024, minOverlap: Int = 128, maxTiles: Int = 12) {
            self.tileSize = tileSize
            self.minOverlap = minOverlap
            self.maxTiles = maxTiles
        }
    }

    public struct Plan: Sendable, Equatable {
        public var tiles: [Tile]
        /// Model pixels per source pixel (1 = native resolution; below 1 when the budget forced a downscale).
        public var scale: Double
        public var rows: Int, columns: Int
    }

    /// Whether an image is worth tiling: its area is well over one tile's (a one-shot call would
    /// downscale it), e.g. long screenshots and posters.
    public static func needsTiling(width: Int, height: Int, configuration c: Configuration = Configuration()) -> Bool {
        Double(width) * Double(height) > 1.25 * Double(c.tileSize * c.tileSize)
    }

    /// Number of tiles needed to cover `length` with tiles of `tile` and overlaps of at least `overlap`.
    static func count(length: Int, tile: Int, overlap: Int) -> Int {
        if length <= tile { return 1 }
        let step = max(1, tile - overlap)
        return 1 + Int((Double(length - tile) / Double(step)).rounded(.up))
    }

    /// Evenly spaced starts for `n` tiles of `tile` over `length` (first at 0, last flush with the end).
    static func starts(length: Int, tile: Int, n: Int) -> [Int] {
        if n <= 1 { return [0] }
        let span = Double(length - tile)
        return (0..<n).map { Int((span * Double($0) / Double(n - 1)).rounded()) }
    }

    /// The tiling of a `width`×`height` image: row-major (reading order), covering every pixel, with
    /// neighbouring tiles overlapping by at least `minOverlap` (scaled), at most `maxTiles` tiles, and each
    /// tile at most `tileSize`² model pixels. An image up to 1.5 × `tileSize` wide (a phone screenshot)
    /// is one column of full-width tiles, so no text line is cut in two; a wider one is a grid of squares.
    public static func plan(width: Int, height: Int, configuration c: Configuration = Configuration()) -> Plan {
        precondition(c.tileSize > 2 * c.minOverlap && c.maxTiles >= 1, "invalid dense-text configuration")
        guard width > 0, height > 0 else { return Plan(tiles: [], scale: 1, rows: 0, columns: 0) }
        var scale = 1.0
        while true {
            // Tile and overlap in source pixels at this scale.
            let side = max(1, Int(Double(c.tileSize) / scale))
            let overlap = Int((Double(c.minOverlap) / scale).rounded(.up))
            let tileW: Int, tileH: Int, columns: Int
            if Double(width) * scale <= 1.5 * Double(c.tileSize) {
                columns = 1
                tileW = width
                let area = Double(c.tileSize * c.tileSize) / (scale * scale)
                tileH = min(height, Int(1.5 * Double(side)), max(overlap + 1, Int(area / Double(width))))
            } else {
                tileW = min(side, width)
                tileH = min(side, height)
                columns = count(length: width, tile: tileW, overlap: overlap)
            }
            let rows = count(length: height, tile: tileH, overlap: overlap)
            if rows * columns <= c.maxTiles || scale < 1e-3 {
                var tiles: [Tile] = []
                for (r, y) in starts(length: height, tile: tileH, n: rows).enumerated() {
                    for (col, x) in starts(length: width, tile: tileW, n: columns).enumerated() {
                        tiles.append(Tile(x: x, y: y, width: tileW, height: tileH, row: r, column: col))
                    }
                }
                return Plan(tiles: tiles, scale: scale, rows: rows, columns: columns)
            }
            scale *= 0.9
        }
    }

    /// The pixels of `tile`.
    public static func crop(_ image: RGBImage, _ tile: Tile) -> RGBImage {
        let x0 = max(0, min(tile.x, image.width)), y0 = max(0, min(tile.y, image.height))
        let x1 = max(x0, min(tile.maxX, image.width)), y1 = max(y0, min(tile.maxY, image.height))
        let w = x1 - x0, h = y1 - y0
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for row in 0..<h {
                    let from = ((y0 + row) * image.width + x0) * 3
                    let to = row * w * 3
                    for i in 0..<(w * 3) { dst[to + i] = src[from + i] }
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    // MARK: Merging lines

    /// A line reduced for comparison: case-folded, without whitespace and punctuation.
    public static func normalize(_ line: String) -> String {
        String(line.lowercased().unicodeScalars.filter { scalar in
            !(scalar.properties.isWhitespace || CharacterSetLike.isPunctuation(scalar))
        }.map(Character.init))
    }

    /// Whether two lines are the same text read twice (exactly, or with a few OCR differences, or
    /// one a clipped part of the other at a tile edge).
    public static func sameLine(_ a: String, _ b: String) -> Bool {
        let x = normalize(a), y = normalize(b)
        if x.isEmpty || y.isEmpty { return x == y }
        if x == y { return true }
        let (short, long) = x.count <= y.count ? (x, y) : (y, x)
        if short.count >= 4 && long.contains(short) { return true }
        let distance = editDistance(Array(x), Array(y))
        return Double(distance) <= 0.2 * Double(max(x.count, y.count))
    }

    /// Merges per-tile lines in tile order. Between consecutive tiles the longest run of lines that ends
    /// the merged text and begins the next tile (compared with ``sameLine(_:_:)``) is kept once; the
    /// longer reading of a clipped line wins. With `window` > 0 (grids with side-by-side tiles, whose
    /// overlaps are read in a different order), a new line that repeats one of the last `window` merged
    /// lines is dropped too. Empty lines are dropped.
    public static func merge(_ tiles: [[String]], window: Int = 0) -> [String] {
        var merged: [String] = []
        for lines in tiles {
            let next = lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if merged.isEmpty { merged = next; continue }
            // Longest suffix of `merged` equal to a prefix of `next`.
            var best = 0
            let limit = min(merged.count, next.count)
            if limit > 0 {
                for k in stride(from: limit, through: 1, by: -1) {
                    let tail = merged[(merged.count - k)...]
                    if zip(tail, next[0..<k]).allSatisfy({ sameLine($0, $1) }) { best = k; break }
                }
            }
            for i in 0..<best {
                let at = merged.count - best + i
                let (a, b) = (normalize(next[i]).count, normalize(merged[at]).count)
                if a > b || (a == b && next[i].count > merged[at].count) { merged[at] = next[i] }
            }
            // Lines of the new tile that repeat one of the last `window` merged lines (overlap areas whose
            // order differs between tiles, e.g. side-by-side columns) are skipped.
            for line in next[best...] {
                if window > 0, merged.suffix(window).contains(where: { sameLine($0, line) }) { continue }
                merged.append(line)
            }
        }
        return merged
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

/// Punctuation test without Foundation's CharacterSet bridging.
enum CharacterSetLike {
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation, .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            true
        default: false
        }
    }
}
