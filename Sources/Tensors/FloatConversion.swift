/// Exact conversions from the 16-bit storage formats to F32.

/// BF16 is the top half of an F32: shifting it into place is exact.
@inlinable
public func bf16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Round-to-nearest-even F32 → BF16, as PyTorch's `.to(torch.bfloat16)` does (NaN stays NaN).
@inlinable
public func floatToBF16(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
    let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

/// IEEE half → F32 through Swift's `Float16` where available, bit manipulation otherwise.
@inlinable
public func f16ToFloat(_ bits: UInt16) -> Float {
    #if arch(x86_64) || arch(arm64)
    return Float(Float16(bitPattern: bits))
    #else
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = Int((bits >> 10) & 0x1F)
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        let value = Float(mantissa) * 0x1p-24
        return sign == 0 ? value : -value
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | (UInt32(exponent + 112) << 23) | (mantissa << 13))
    #endif
}

/// Converts `count` 16-bit values at `source` into F32 at `destination`.
public func convertToFloat(_ dtype: DType, source: UnsafeRawPointer, destination: UnsafeMutablePointer<Float>, count: Int) {
    switch dtype {
    case .bf16:
        let src = source.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { destination[i] = bf16ToFloat(src[i]) }
    case .f16:
        let src = source.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { destination[i] = f16ToFloat(src[i]) }
    case .f32:
        destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .i32:
        let src = source.assumingMemoryBound(to: Int32.self)
        for i in 0..<count { destination[i] = Float(src[i]) }
    case .i64:
        let src = source.assumingMemoryBound(to: Int64.self)
        for i in 0..<count { destination[i] = Float(src[i]) }
    case .u8:
        let src = source.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count { destination[i] = Float(src[i]) }
    case .q8, .q4:
        preconditionFailure("block-quantized data is dequantized by Kernels, not here")
    }
}
