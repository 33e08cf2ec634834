/// A contiguous F32 tensor that owns 64-byte-aligned memory. Activations, converted weights and
/// scratch buffers are all `Tensor`s; the shape is row-major (last dimension contiguous).
///
/// A class so that large buffers are never copied by accident; `@unchecked Sendable` because kernels
/// write disjoint slices from several threads, which the type system cannot express.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let capacity: Int
    public let data: UnsafeMutablePointer<Float>

    public var count: Int { shape.reduce(1, *) }

    /// Zero-filled tensor of the given shape.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        capacity = max(1, shape.reduce(1, *))
        let raw = LargeAllocation.allocate(byteCount: capacity * 4)
        data = raw.bindMemory(to: Float.self, capacity: capacity)
        data.initialize(repeating: 0, count: capacity)
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(data).deallocate() }

    /// Reinterprets the shape; the element count must not exceed the allocation.
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) <= capacity, "reshape \(newShape) exceeds capacity \(capacity)")
        shape = newShape
    }

    public subscript(index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// Pointer to row `row` of a tensor viewed as [rows, lastDim].
    @inlinable
    public func row(_ row: Int) -> UnsafeMutablePointer<Float> {
        data + row * shape[shape.count - 1]
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func copy() -> Tensor {
        let result = Tensor(shape: shape)
        result.data.update(from: data, count: count)
        return result
    }
}
