import Foundation
#if POSTLENS_AVX2
import _Builtin_intrinsics.intel
#endif

/// `gelu_pytorch_tanh`: `0.5·u·(1 + tanh(√(2/π)·(u + 0.044715·u³)))` — the ViT MLP's activation.
public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    let c: Float = 0.7978845608028654  // √(2/π)
    Parallel.forRanges(count, minimumPerThread: 16384) { range in
        var i = range.lowerBound
        #if POSTLENS_AVX2
        // tanh(z) = 1 − 2/(e^{2z} + 1): one vector exp instead of a libm tanhf call per value.
        let half = _mm256_set1_ps(0.5), one = _mm256_set1_ps(1), two = _mm256_set1_ps(2)
        let cv = _mm256_set1_ps(c), cubic = _mm256_set1_ps(0.044715)
        while i + 8 <= range.upperBound {
            let u = _mm256_loadu_ps(x + i)
            let z = _mm256_mul_ps(cv, _mm256_fmadd_ps(_mm256_mul_ps(cubic, u), _mm256_mul_ps(u, u), u))
            let tanh = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_add_ps(z, z)), one)))
            _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, u), _mm256_add_ps(one, tanh)))
            i += 8
        }
        #endif
        while i < range.upperBound {
            let u = x[i]
            x[i] = 0.5 * u * (1 + tanhf(c * (u + 0.044715 * u * u * u)))
            i += 1
        }
    }
}

/// Exact GELU `0.5·u·(1 + erf(u/√2))` — the mergers' activation (PyTorch `nn.GELU()` default).
public func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forRanges(count, minimumPerThread: 16384) { range in
        for i in range {
            let u = x[i]
            x[i] = 0.5 * u * (1 + erff(u * 0.7071067811865476))
        }
    }
}

/// SwiGLU gate: `gate[i] = silu(gate[i]) · up[i]`, with `silu(u) = u·sigmoid(u)`.
public func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    Parallel.forRanges(count, minimumPerThread: 16384) { range in
        var i = range.lowerBound
        #if POSTLENS_AVX2
        let one = _mm256_set1_ps(1), zero = _mm256_setzero_ps()
        while i + 8 <= range.upperBound {
            let g = _mm256_loadu_ps(gate + i)
            let sigmoidDenominator = _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, g)))
            _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, sigmoidDenominator), _mm256_loadu_ps(up + i)))
            i += 8
        }
        #endif
        while i < range.upperBound {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
            i += 1
        }
    }
}

/// `y[i] += x[i]`.
public func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += x[i] }
}

/// Numerically stable softmax of one row, in place (max subtracted, f32).
public func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    let inv = 1 / softmaxNumerators(x, count: count)
    for i in 0..<count { x[i] *= inv }
}

/// `x[i] = e^(x[i] − max x)` in place; returns their sum. Softmax without the final division, for
/// callers that can divide something smaller (attention divides each output row instead of the
/// probabilities).
@discardableResult
public func softmaxNumerators(_ x: UnsafeMutablePointer<Float>, count: Int) -> Float {
    guard count > 0 else { return 0 }
    var maximum = -Float.infinity
    var i = 0
    #if POSTLENS_AVX2
    var m8 = _mm256_set1_ps(-.infinity)
    while i + 8 <= count {
        m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i))
        i += 8
    }
    let m4 = pointwiseMax(m8.lowHalf, m8.highHalf), m2 = pointwiseMax(m4.lowHalf, m4.highHalf)
    maximum = max(m2[0], m2[1])
    #endif
    while i < count {
        if x[i] > maximum { maximum = x[i] }
        i += 1
    }
    var sum: Float = 0
    i = 0
    #if POSTLENS_AVX2
    let m = _mm256_set1_ps(maximum)
    var partial = _mm256_setzero_ps()
    while i + 8 <= count {
        let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m))
        _mm256_storeu_ps(x + i, e)
        partial = _mm256_add_ps(partial, e)
        i += 8
    }
    sum = horizontalSum(partial)
    #endif
    while i < count {
        let e = expf(x[i] - maximum)
        x[i] = e
        sum += e
        i += 1
    }
    return sum
}
