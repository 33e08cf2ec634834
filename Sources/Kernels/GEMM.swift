import CBLAS

/// `y[M,N] = x[M,K] · Wᵀ` with `W` stored PyTorch-style as `[N, K]` (row-major), optional bias `[N]`,
/// optional accumulate into `y`. OpenBLAS sgemm for M > 1, sgemv for a single row (2–3× faster at M = 1).
/// Leading dimensions allow strided views (e.g. one attention head inside a `[T, H·d]` matrix).
public func matmulTransposedB(
    _ x: UnsafePointer<Float>, rows m: Int, inner k: Int, ldx: Int? = nil,
    _ w: UnsafePointer<Float>, columns n: Int, ldw: Int? = nil,
    _ y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
    bias: UnsafePointer<Float>? = nil, accumulate: Bool = false, alpha: Float = 1
) {
    let ldx = ldx ?? k, ldw = ldw ?? k, ldy = ldy ?? n
    guard m > 0, n > 0 else { return }
    if let bias {
        // The bias goes into y first; the product is then accumulated on top (beta = 1).
        for r in 0..<m {
            let row = y + r * ldy
            if accumulate {
                for c in 0..<n { row[c] += bias[c] }
            } else {
                row.update(from: bias, count: n)
            }
        }
    }
    let beta: Float = (accumulate || bias != nil) ? 1 : 0
    if k == 0 {
        if beta == 0 { for r in 0..<m { (y + r * ldy).update(repeating: 0, count: n) } }
        return
    }
    if m == 1 {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, w, Int32(ldw), x, 1, beta, y, 1)
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, x, Int32(ldx), w, Int32(ldw), beta, y, Int32(ldy))
    }
}

/// `y[M,N] = x[M,K] · B[K,N]` (B not transposed), for attention's probabilities · V.
public func matmul(
    _ x: UnsafePointer<Float>, rows m: Int, inner k: Int, ldx: Int? = nil,
    _ b: UnsafePointer<Float>, columns n: Int, ldb: Int? = nil,
    _ y: UnsafeMutablePointer<Float>, ldy: Int? = nil, alpha: Float = 1, accumulate: Bool = false
) {
    let ldx = ldx ?? k, ldb = ldb ?? n, ldy = ldy ?? n
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if !accumulate { for r in 0..<m { (y + r * ldy).update(repeating: 0, count: n) } }
        return
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                alpha, x, Int32(ldx), b, Int32(ldb), accumulate ? 1 : 0, y, Int32(ldy))
}

/// Naive twin of `matmulTransposedB` (double accumulation), for tests.
public func naiveMatmulTransposedB(
    _ x: UnsafePointer<Float>, rows m: Int, inner k: Int,
    _ w: UnsafePointer<Float>, columns n: Int,
    _ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil
) {
    for r in 0..<m {
        for c in 0..<n {
            var sum = Double(bias?[c] ?? 0)
            for i in 0..<k { sum += Double(x[r * k + i]) * Double(w[c * k + i]) }
            y[r * n + c] = Float(sum)
        }
    }
}
