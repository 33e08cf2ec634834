import Qwen3VL
import Testing

@Suite struct SmartResizeTests {
    /// qwen3vl-spec.md §2.3: (W, H) in → (W, H) out, image tokens.
    static let vectors: [(Int, Int, Int, Int, Int)] = [
        (640, 480, 640, 480, 300), (1024, 768, 1024, 768, 768), (1280, 720, 1280, 704, 880),
        (800, 600, 800, 608, 475), (1920, 1080, 1920, 1088, 2040), (336, 336, 320, 320, 100),
        (224, 224, 256, 256, 64), (100, 100, 256, 256, 64), (4000, 3000, 4000, 3008, 11750),
        (3024, 4032, 3008, 4032, 11844), (5000, 5000, 4096, 4096, 16384),
    ]

    @Test(arguments: vectors.indices)
    func specVector(index: Int) throws {
        let (w, h, ow, oh, tokens) = Self.vectors[index]
        let out = try smartResize(height: h, width: w, factor: 32, minPixels: 65_536, maxPixels: 16_777_216)
        #expect(out.width == ow && out.height == oh, "\(w)x\(h) → \(out.width)x\(out.height)")
        #expect((out.width / 32) * (out.height / 32) == tokens)
    }

    @Test func halfToEvenRounding() throws {
        // 720/32 = 22.5 → 22; 48/32 = 1.5 → 2 (then the min-pixels branch takes over for tiny images).
        let out = try smartResize(height: 720, width: 1280, minPixels: 1, maxPixels: 1 << 30)
        #expect(out.height == 704)
        let small = try smartResize(height: 48, width: 48, minPixels: 1, maxPixels: 1 << 30)
        #expect(small.height == 64 && small.width == 64)
    }

    @Test func extremeAspectRatioIsRejected() {
        #expect(throws: ImageProcessingError.aspectRatioTooLarge(width: 201, height: 1)) {
            try smartResize(height: 1, width: 201, minPixels: 65_536, maxPixels: 16_777_216)
        }
        #expect(throws: ImageProcessingError.self) {
            try smartResize(height: 10_050, width: 50, minPixels: 65_536, maxPixels: 16_777_216)
        }
        // Exactly 200 is allowed.
        #expect(throws: Never.self) { try smartResize(height: 1, width: 200, minPixels: 65_536, maxPixels: 16_777_216) }
    }

    @Test func invalidSizesThrow() {
        #expect(throws: ImageProcessingError.self) { try smartResize(height: 0, width: 10, minPixels: 1, maxPixels: 10) }
        #expect(throws: ImageProcessingError.self) { try smartResize(height: 10, width: 10, minPixels: 100, maxPixels: 10) }
    }
}
