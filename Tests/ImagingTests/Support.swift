import Foundation
import Imaging

/// `Tests/Fixtures/images`, found from this file's location (tests never reach the network).
let imageFixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").appendingPathComponent("images")

func fixtureData(_ name: String) throws -> Data {
    try Data(contentsOf: imageFixtures.appendingPathComponent(name))
}

/// reference.json, written by tools/fixtures/make_image_fixtures.py.
struct ReferenceManifest: Decodable {
    struct Entry: Decodable {
        let file: String
        let decoded_width: Int
        let decoded_height: Int
        let max_pixels: Int?
        let image_grid_thw: [Int]
        let reference: String
    }
    struct DecodeCheck: Decodable {
        let file: String
        let width: Int
        let height: Int
        let rgb: String
    }
    let versions: [String: String]
    let images: [Entry]
    /// Small images whose upright RGB decode (PIL exif_transpose + convert("RGB")) is stored exactly.
    let decode_checks: [DecodeCheck]

    static func load() throws -> ReferenceManifest {
        try JSONDecoder().decode(ReferenceManifest.self, from: fixtureData("reference.json"))
    }
}

/// Deterministic pseudo-random bytes (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
    var rng = SplitMix(state: seed)
    return RGBImage(width: width, height: height,
                    pixels: (0..<(width * height * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) })
}

/// CRC-32 (PNG / zlib polynomial), for hand-built PNG chunks.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

func pngChunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
    let typed = Array(type.utf8) + body
    return bigEndian(UInt32(body.count)) + typed + bigEndian(crc32(typed))
}
