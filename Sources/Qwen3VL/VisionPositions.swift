import Foundation
import Tensors

/// A still image (or video frame group) as the vision tower sees it: a grid of 16-px patches.
public struct ImageGrid: Sendable, Equatable {
    public let t: Int, h: Int, w: Int
    public init(t: Int, h: Int, w: Int) { self.t = t; self.h = h; self.w = w }
    public var patchCount: Int { t * h * w }
    public func tokenCount(mergeSize: Int) -> Int { patchCount / (mergeSize * mergeSize) }
}

/// Position information for the ViT (spec §3.2, §3.3), in merge-window order:
/// block row, block column, inner row, inner column — the order of `pixel_values` rows.
enum VisionPositions {
    /// `(row, col)` patch coordinates of every patch of `grid`, in merge-window order, repeated per frame.
    static func patchCoordinates(_ grid: ImageGrid, mergeSize m: Int) -> [(row: Int, col: Int)] {
        var coordinates: [(row: Int, col: Int)] = []
        coordinates.reserveCapacity(grid.patchCount)
        for _ in 0..<grid.t {
            for br in 0..<(grid.h / m) {
                for bc in 0..<(grid.w / m) {
                    for r in 0..<m {
                        for c in 0..<m { coordinates.append((br * m + r, bc * m + c)) }
                    }
                }
            }
        }
        return coordinates
    }

    /// Adds the learned position table, bilinearly resampled (align-corners) to the grid, to `x [N, D]`.
    static func addPositionEmbedding(_ x: UnsafeMutablePointer<Float>, grid: ImageGrid, table: Tensor, side s: Int, mergeSize: Int) {
        let d = table.shape[1]
        func axis(_ n: Int) -> [(lo: Int, hi: Int, frac: Float)] {
            (0..<n).map { i in
                let f = n > 1 ? Float(Double(i) * Double(s - 1) / Double(n - 1)) : 0
                let lo = Int(f)
                return (lo, min(lo + 1, s - 1), f - Float(lo))
            }
        }
        let ys = axis(grid.h), xs = axis(grid.w)
        for (n, (row, col)) in patchCoordinates(grid, mergeSize: mergeSize).enumerated() {
            let y = ys[row], xx = xs[col]
            let w00 = (1 - y.frac) * (1 - xx.frac), w01 = (1 - y.frac) * xx.frac
            let w10 = y.frac * (1 - xx.frac), w11 = y.frac * xx.frac
            let p00 = table.row(y.lo * s + xx.lo), p01 = table.row(y.lo * s + xx.hi)
            let p10 = table.row(y.hi * s + xx.lo), p11 = table.row(y.hi * s + xx.hi)
            let out = x + n * d
            for i in 0..<d {
                out[i] += w00 * p00[i] + w01 * p01[i] + w10 * p10[i] + w11 * p11[i]
            }
        }
    }

    /// cos/sin tables `[N, headDim/2]` of the 2D rotary embedding: the first quarter of the head
    /// rotates by the patch row, the second by the column, θ = `theta`.
    static func rotaryTables(_ grid: ImageGrid, headDim: Int, theta: Double, mergeSize: Int) -> (cos: [Float], sin: [Float]) {
        let half = headDim / 2, quarter = headDim / 4
        let inverse = (0..<quarter).map { Float(1 / pow(theta, Double(2 * $0) / Double(half))) }
        let coordinates = patchCoordinates(grid, mergeSize: mergeSize)
        var cosTable = [Float](repeating: 0, count: coordinates.count * half)
        var sinTable = cosTable
        for (n, (row, col)) in coordinates.enumerated() {
            for j in 0..<quarter {
                let a = Float(row) * inverse[j], b = Float(col) * inverse[j]
                cosTable[n * half + j] = cosf(a); sinTable[n * half + j] = sinf(a)
                cosTable[n * half + quarter + j] = cosf(b); sinTable[n * half + quarter + j] = sinf(b)
            }
        }
        return (cosTable, sinTable)
    }
}
