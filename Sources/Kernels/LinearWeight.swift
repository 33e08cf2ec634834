import Tensors

/// A linear layer's weight `[out, in]` (PyTorch layout, `y = x·Wᵀ + b`) in a runtime storage format.
///
/// F32 is the reference format: exact BF16→F32 conversion, OpenBLAS for the products. Quantized
/// formats add cases here; callers only see `forward`.
public final class LinearWeight: @unchecked Sendable {
    public enum Storage {
        case f32(Tensor)
    }

    public let outFeatures: Int
    public let inFeatures: Int
    public let storage: Storage
    /// `[out]`, or nil (no bias).
    public let bias: Tensor?

    public init(f32 weight: Tensor, bias: Tensor?) {
        precondition(weight.shape.count == 2, "linear weight must be 2-D, got \(weight.shape)")
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        storage = .f32(weight)
        self.bias = bias
    }

    /// Bytes held by the weight (and bias).
    public var byteCount: Int {
        switch storage {
        case .f32(let t): return t.count * 4 + (bias?.count ?? 0) * 4
        }
    }

    /// `y[rows, out] = x[rows, in] · Wᵀ + b` (or `+=` when `accumulate`). `x` rows have stride `ldx`.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil,
                        into y: UnsafeMutablePointer<Float>, ldy: Int? = nil, accumulate: Bool = false) {
        switch storage {
        case .f32(let w):
            matmulTransposedB(x, rows: rows, inner: inFeatures, ldx: ldx, w.data, columns: outFeatures,
                              y, ldy: ldy, bias: bias?.data, accumulate: accumulate)
        }
    }

    /// Convenience: a new `[rows, out]` tensor.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let rows = x.count / inFeatures
        let y = Tensor(shape: [rows, outFeatures])
        forward(x.data, rows: rows, into: y.data)
        return y
    }
}

extension LinearWeight {
    /// Identity of the underlying storage (a tied output matrix shares the embedding's tensor).
    public var storageIdentity: ObjectIdentifier {
        switch storage {
        case .f32(let t): return ObjectIdentifier(t)
        }
    }
}
