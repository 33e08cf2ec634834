import Foundation
import KernelsSIMD

/// `gelu_pytorch_tanh`: `0.5·u·(1 + tanh(√(2/π)·(u + 0.044715·u³)))` — the ViT MLP's activation.
public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    let c: Float = 0.7978845608028654  // √(2/π)
    Parallel.forRanges(count, minimumPerThread: 16384) { range in
        var i = range.lowerBound
        // tanh(z) = 1 − 2/(e^{2z} + 1): one vector exp instead of a libm tanhf call per value.
        while i + 8 <= range.upperBound {
            let u = load8(x + i)
            let z = c * fma(0.044715 * u, u * u, u)
            let tanh = 1 - 2 / (exp(z + z) + 1)
            store8(0.5 * u * (1 + tanh), x + i)
            i += 8
        }
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
        while i + 8 <= range.upperBound {
            let g = load8(gate + i)
            store8(g / (1 + exp(-g)) * load8(up + i), gate + i)
            i += 8
        }
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
    var largest = -Float.infinity
    var i = 0
    var m8 = Floats8(repeating: -.infinity)
    while i + 8 <= count {
        m8 = larger(m8, load8(x + i))
        i += 8
    }
    largest = maximum(m8)
    while i < count {
        if x[i] > largest { largest = x[i] }
        i += 1
    }
    i = 0
    let m = Floats8(repeating: largest)
    var partial = Floats8()
    while i + 8 <= count {
        let e = exp(load8(x + i) - m)
        store8(e, x + i)
        partial += e
        i += 8
    }
    var sum = KernelsSIMD.sum(partial)
    while i < count {
        let e = expf(x[i] - largest)
        x[i] = e
        sum += e
        i += 1
    }
    return sum
}
