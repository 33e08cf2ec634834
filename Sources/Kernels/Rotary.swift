/// Rotate-half rotary embedding (spec §3.3, §4.3) applied in place to `rows` rows of `heads` heads of
/// width `headDim`, each row with its own angles: `cos`/`sin` are `[rows, headDim/2]`.
/// For `j < headDim/2`: `x'[j] = x[j]·cos − x[j+h]·sin`, `x'[j+h] = x[j+h]·cos + x[j]·sin`.
public func applyRotary(
    _ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int, rowStride: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>
) {
    let half = headDim / 2
    Parallel.forRanges(rows, minimumPerThread: 32) { range in
        for r in range {
            let c = cos + r * half, s = sin + r * half
            for h in 0..<heads {
                let v = x + r * rowStride + h * headDim
                for j in 0..<half {
                    let a = v[j], b = v[j + half]
                    v[j] = a * c[j] - b * s[j]
                    v[j + half] = b * c[j] + a * s[j]
                }
            }
        }
    }
}
