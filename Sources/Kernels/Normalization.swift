import Foundation

/// LayerNorm over the last dimension (biased variance, affine), as `torch.nn.LayerNorm`:
/// `y = (x − mean) / sqrt(var + eps) · w + b`, for `rows` rows of width `d`. In place allowed.
public func layerNorm(
    _ x: UnsafePointer<Float>, rows: Int, width d: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float,
    _ y: UnsafeMutablePointer<Float>
) {
    Parallel.forRanges(rows, minimumPerThread: 16) { range in
        for r in range {
            let xr = x + r * d, yr = y + r * d
            var mean: Float = 0
            for i in 0..<d { mean += xr[i] }
            mean /= Float(d)
            var variance: Float = 0
            for i in 0..<d { let t = xr[i] - mean; variance += t * t }
            variance /= Float(d)
            let inv = 1 / (variance + eps).squareRoot()
            for i in 0..<d { yr[i] = (xr[i] - mean) * inv * weight[i] + bias[i] }
        }
    }
}

/// RMSNorm over the last dimension: `y = x / sqrt(mean(x²) + eps) · w` (Qwen3: weight used as-is).
/// In place allowed.
public func rmsNorm(
    _ x: UnsafePointer<Float>, rows: Int, width d: Int,
    weight: UnsafePointer<Float>, eps: Float,
    _ y: UnsafeMutablePointer<Float>
) {
    Parallel.forRanges(rows, minimumPerThread: 32) { range in
        for r in range {
            let xr = x + r * d, yr = y + r * d
            var sum: Float = 0
            for i in 0..<d { sum += xr[i] * xr[i] }
            let inv = 1 / (sum / Float(d) + eps).squareRoot()
            for i in 0..<d { yr[i] = xr[i] * inv * weight[i] }
        }
    }
}
