/// Element types the engine stores. Compute is always F32; the others are storage formats.
///
/// - `f32`, `f16`, `bf16`: as in safetensors.
/// - `q8`: blocks of 32 signed 8-bit values with one F32 scale (see `Kernels` for the layout).
/// - `q4`: blocks of 32 4-bit values with one F32 scale.
public enum DType: String, Sendable, Codable, CaseIterable {
    case f32, f16, bf16, i32, i64, u8, q8, q4

    /// Bytes per element for the plain (non-block) types; nil for block-quantized types.
    public var elementSize: Int? {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .i64: return 8
        case .u8: return 1
        case .q8, .q4: return nil
        }
    }
}
