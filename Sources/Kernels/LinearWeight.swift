import Tensors

/// A linear layer's weight `[out, in]` (PyTorch layout, `y = x·Wᵀ + b`) in a runtime storage format.
///
/// F32 is the reference format: exact BF16→F32 conversion, OpenBLAS for the products. Q8 and Q4
/// (layouts documented on `Q8Matrix` / `Q4Matrix`) are quantized at load; callers only see `forward`
/// and `dequantizeRow`. Biases stay F32 in every format.
public final class LinearWeight: @unchecked Sendable {
    public enum Storage {
        case f32(Tensor)
        case q8(Q8Matrix)
        case q4(Q4Matrix)
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

    public init(q8 weight: Q8Matrix, bias: Tensor?) {
        outFeatures = weight.rows
        inFeatures = weight.columns
        storage = .q8(weight)
        self.bias = bias
    }

    public init(q4 weight: Q4Matrix, bias: Tensor?) {
        outFeatures = weight.rows
        inFeatures = weight.columns
        storage = .q4(weight)
        self.bias = bias
    }

    /// Converts an F32 `[out, in]` weight to `format` (quantizing at load; the F32 tensor is not kept
    /// for the quantized formats). Any `in` is supported: quantized rows are zero-padded to a multiple
    /// of 32.
    public convenience init(_ weight: Tensor, bias: Tensor?, format: WeightFormat) {
        switch format {
        case .f32: self.init(f32: weight, bias: bias)
        case .q8: self.init(q8: Q8Matrix(quantizing: weight), bias: bias)
        case .q4: self.init(q4: Q4Matrix(quantizing: weight), bias: bias)
        }
    }

    public var format: WeightFormat {
        switch storage {
        case .f32: return .f32
        case .q8: return .q8
        case .q4: return .q4
        }
    }

    /// Bytes held by the weight (and bias), as stored (quantized blocks with their scales and padding).
    public var byteCount: Int {
        let biasBytes = (bias?.count ?? 0) * 4
        switch storage {
        case .f32(let t): return t.count * 4 + biasBytes
        case .q8(let q): return q.byteCount + biasBytes
        case .q4(let q): return q.byteCount + biasBytes
        }
    }

    /// `y[rows, out] = x[rows, in] · Wᵀ + b` (or `+=` when `accumulate`). `x` rows have stride `ldx`.
    ///
    /// Quantized: up to `QuantizedGEMM.smallBatchLimit` (64) rows (decode, batched decode) use integer
    /// dot products on Q8-quantized activations; more rows (prefill, vision) use dequantized weight
    /// tiles with sgemm.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil,
                        into y: UnsafeMutablePointer<Float>, ldy: Int? = nil, accumulate: Bool = false) {
        switch storage {
        case .f32(let w):
            matmulTransposedB(x, rows: rows, inner: inFeatures, ldx: ldx, w.data, columns: outFeatures,
                              y, ldy: ldy, bias: bias?.data, accumulate: accumulate)
        case .q8(let w):
            QuantizedGEMM.forward(w, x, rows: rows, ldx: ldx ?? inFeatures, into: y, ldy: ldy ?? outFeatures,
                                  bias: bias?.data, accumulate: accumulate)
        case .q4(let w):
            QuantizedGEMM.forward(w, x, rows: rows, ldx: ldx ?? inFeatures, into: y, ldy: ldy ?? outFeatures,
                                  bias: bias?.data, accumulate: accumulate)
        }
    }

    /// Row `r` of `W` (`inFeatures` values) as F32 — the embedding lookup on a tied table.
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < outFeatures, "row \(r) outside 0..<\(outFeatures)")
        switch storage {
        case .f32(let t): out.update(from: t.data + r * inFeatures, count: inFeatures)
        case .q8(let q): q.dequantizeRow(r, into: out)
        case .q4(let q): q.dequantizeRow(r, into: out)
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
    /// Identity of the underlying storage (a tied output matrix shares the embedding's storage).
    public var storageIdentity: ObjectIdentifier {
        switch storage {
        case .f32(let t): return ObjectIdentifier(t)
        case .q8(let q): return ObjectIdentifier(q)
        case .q4(let q): return ObjectIdentifier(q)
        }
    }
}
