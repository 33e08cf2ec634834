import Foundation

/// `gelu_pytorch_tanh`: `0.5·u·(1 + tanh(√(2/π)·(u + 0.044715·u³)))` — the ViT MLP's activation.
public func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
    let c: Float = 0.7978845608028654  // √(2/π)
    Parallel.forRanges(count, minimumPerThread: 16384) { range in
        for i in range {
            let u = x[i]
            x[i] = 0.5 * u * (1 + tanhf(c * (u + 0.044715 * u * u * u)))
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
        for i in range {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
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
    var maximum = -Float.infinity
    for i in 0..<count where x[i] > maximum { maximum = x[i] }
    var sum: Float = 0
    for i in 0..<count {
        let e = expf(x[i] - maximum)
        x[i] = e
        sum += e
    }
    let inv = 1 / sum
    for i in 0..<count { x[i] *= inv }
}
