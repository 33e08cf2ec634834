import Testing
@testable import Tensors

@Test func tensorIsZeroFilledAndAligned() {
    let t = Tensor(shape: [3, 5])
    #expect(t.count == 15)
    #expect(t.array.allSatisfy { $0 == 0 })
    #expect(Int(bitPattern: t.data) % 64 == 0)
    t[7] = 2
    #expect(t.row(1)[2] == 2)
    t.reshape([5, 3])
    #expect(t.row(2)[1] == 2)
}

@Test func f16ConversionMatchesFloat16() {
    for bits: UInt16 in [0, 0x3C00, 0xBC00, 0x7BFF, 0x0001, 0x03FF, 0x8400, 0x7C00] {
        #expect(f16ToFloat(bits) == Float(Float16(bitPattern: bits)))
    }
}
