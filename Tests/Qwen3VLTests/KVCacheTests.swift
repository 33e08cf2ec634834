import Testing
@testable import Kernels
@testable import Qwen3VL

/// The KV cache in either element: rows written at positions come back (rounded to BF16 in a BF16 cache), growth
/// keeps what was written, and a BF16 cache takes half the bytes per token (what the server's KV budget counts).
@Test("KV cache rows survive growth in F32 and in BF16; BF16 halves the bytes per token", arguments: [KVElement.f32, .bf16])
func kvCacheStoresAndGrows(_ element: KVElement) {
    let cache = KVCache(layers: 2, kvHeads: 2, headDim: 4, initialCapacity: 2, element: element)
    #expect(cache.bytesPerToken == 2 * 2 * 8 * element.byteCount)
    let width = 8
    func row(_ position: Int, _ layer: Int, keys: Bool) -> [Float] {
        (0..<width).map { Float(position * 100 + layer * 10 + $0) * (keys ? 1.0078125 : -0.33) }
    }
    for position in 0..<5 {
        cache.reserve(1)
        for layer in 0..<2 {
            cache.store(layer: layer, position: position, keys: row(position, layer, keys: true),
                        values: row(position, layer, keys: false), rows: 1)
        }
        cache.commit([position])
    }
    #expect(cache.capacity >= 5 && cache.count == 5)
    for layer in 0..<2 {
        for position in 0..<5 {
            let wantK = row(position, layer, keys: true), wantV = row(position, layer, keys: false)
            var gotK = [Float](repeating: 0, count: width), gotV = gotK
            switch cache.rows(layer: layer) {
            case .f32(let k, let v):
                #expect(element == .f32)
                for i in 0..<width { gotK[i] = k[position * width + i]; gotV[i] = v[position * width + i] }
            case .bf16(let k, let v):
                #expect(element == .bf16)
                widenBF16(k + position * width, count: width, into: &gotK)
                widenBF16(v + position * width, count: width, into: &gotV)
            }
            for i in 0..<width {
                let tolerance = element == .f32 ? 0 : abs(wantK[i]) / 256
                #expect(abs(gotK[i] - wantK[i]) <= tolerance, "layer \(layer) position \(position) key \(i)")
                #expect(abs(gotV[i] - wantV[i]) <= (element == .f32 ? 0 : abs(wantV[i]) / 256))
            }
        }
    }
}

@Test("Quantized models keep BF16 KV caches where the attention kernels read BF16, F32 elsewhere")
func kvCacheElementFollowsTheLevel() {
    #expect(KVElement.preferred(quantized: false) == .f32)
    for level in CPUFeatures.host.runnableLevels {
        KernelDispatch.withLevel(level) {
            let expected: KVElement = level >= .avx512 && CPUFeatures.host.avx512BF16 ? .bf16 : .f32
            #expect(KVElement.preferred(quantized: true) == expected, "level \(level)")
        }
    }
}
