import Foundation
import Imaging
import JSON
import Qwen3VL
import Testing
@testable import Analysis

/// Grounding boxes between the model's 0–1000 frame and pixels of the original image (`ImageFrame`).

@Test func frameBoxesAreNormalisedOrRefused() {
    // Corners in any order, clamped, rounded.
    #expect(FrameBox([900, 800, 100, 200])?.values == [100, 200, 900, 800])
    #expect(FrameBox([-20, 10.4, 1200, 10.6])?.values == [0, 10, 1000, 11])
    // No area, wrong count, non-finite: not a box.
    #expect(FrameBox([10, 10, 10, 50]) == nil)
    #expect(FrameBox([10, 10, 50]) == nil)
    #expect(FrameBox([0, .nan, 10, 10]) == nil)
    #expect(FrameBox(json: ["1", 2, 3, 4]) == nil)
    #expect(FrameBox(json: [1, 2, 3, 4])?.values == [1, 2, 3, 4])
}

/// Odd sizes, portrait and landscape, tiny and larger than the model ever sees.
let frameSizes: [(Int, Int)] = [(333, 217), (217, 333), (1, 1), (7, 1000), (1280, 720), (4000, 3008), (5000, 5000), (999, 1001)]

@Test func theWholeFrameIsTheWholeImageWithoutPadding() {
    for (w, h) in frameSizes {
        let frame = ImageFrame(width: w, height: h)
        // A padded or letterboxed mapping would move these corners.
        #expect(frame.pixelBox(FrameBox([0, 0, 1000, 1000])!).values == [0, 0, w, h], "\(w)x\(h)")
        let center = frame.pixelBox(FrameBox([250, 250, 750, 750])!)
        #expect(abs(Double(center.x1 + center.x2) / 2 - Double(w) / 2) <= 0.5, "\(w)x\(h): \(center)")
        #expect(abs(Double(center.y1 + center.y2) / 2 - Double(h) / 2) <= 0.5, "\(w)x\(h): \(center)")
    }
}

@Test func roundTripsAreExactWhereTheGridAllows() {
    for (w, h) in frameSizes {
        let frame = ImageFrame(width: w, height: h)
        for (length, axis) in [(w, "x"), (h, "y")] {
            if length >= 1000 {
                // Pixels are finer than the frame: frame → pixels → frame is the identity.
                for v in 0...1000 {
                    #expect(ImageFrame.frame(ImageFrame.pixels(v, length: length), length: length) == v, "\(axis) \(w)x\(h) v=\(v)")
                }
            }
            if length <= 1000 {
                // The frame is finer than the pixels: pixels → frame → pixels is the identity.
                for p in 0...length {
                    #expect(ImageFrame.pixels(ImageFrame.frame(p, length: length), length: length) == p, "\(axis) \(w)x\(h) p=\(p)")
                }
            }
        }
        let box = PixelBox(x1: w / 5, y1: h / 7, x2: max(w / 5 + 1, w * 3 / 4), y2: max(h / 7 + 1, h * 9 / 10))
        if w <= 1000, h <= 1000, let framed = frame.frameBox(box) { #expect(frame.pixelBox(framed) == box, "\(w)x\(h)") }
    }
}

@Test func frameValuesTakeThePathThroughTheResizedImage() throws {
    // The model saw the smart_resized image; a frame value is a position in it, scaled back by the resize.
    for (w, h) in frameSizes where w > 1 {
        for maxPixels in [16_384, 1 << 20, 16_777_216] {
            let (rh, rw) = try smartResize(height: h, width: w, factor: 32, minPixels: 4096, maxPixels: maxPixels)
            let frame = ImageFrame(width: w, height: h)
            for v in stride(from: 0, through: 1000, by: 37) {
                let x = ImageFrame.resizedCoordinate(Double(v), resized: rw, original: w)
                let y = ImageFrame.resizedCoordinate(Double(v), resized: rh, original: h)
                #expect(abs(x.original - Double(v) * Double(w) / 1000) < 1e-9)
                #expect(abs(y.original - Double(v) * Double(h) / 1000) < 1e-9)
                let box = frame.pixelBox(FrameBox([0, 0, Double(max(v, 1)), Double(max(v, 1))])!)
                #expect(abs(Double(box.x2) - x.original) <= 0.5 || v == 0, "\(w)x\(h) v=\(v)")
                #expect(abs(Double(box.y2) - y.original) <= 0.5 || v == 0, "\(w)x\(h) v=\(v)")
            }
        }
    }
}

// MARK: - Against the processor, on real pixels

struct GroundingFixture {
    static let root = Paths.fixtures.appendingPathComponent("grounding")
    static func cases() throws -> JSONValue { try JSONValue.parse(String(contentsOf: root.appendingPathComponent("cases.json"), encoding: .utf8)) }
}

/// The bounding box `[x1, y1, x2, y2)` of the clearly red pixels.
func redRectangle(_ image: RGBImage) -> PixelBox? {
    var x1 = Int.max, y1 = Int.max, x2 = -1, y2 = -1
    for y in 0..<image.height {
        for x in 0..<image.width {
            let i = (y * image.width + x) * 3
            if image.pixels[i] > 190 && image.pixels[i + 1] < 90 && image.pixels[i + 2] < 90 {
                x1 = min(x1, x); y1 = min(y1, y); x2 = max(x2, x + 1); y2 = max(y2, y + 1)
            }
        }
    }
    return x2 < 0 ? nil : PixelBox(x1: x1, y1: y1, x2: x2, y2: y2)
}

@Test("EXIF-rotated JPEGs: a box the model would give maps onto the rectangle the viewer sees",
      arguments: ["rect_orient1.jpg", "rect_orient3.jpg", "rect_orient6.jpg", "rect_orient8.jpg"])
func rotatedJPEGsRoundTripThroughTheProcessor(_ name: String) throws {
    let cases = try GroundingFixture.cases()
    let expected = try #require(cases["images"]?[name])
    let data = try Data(contentsOf: GroundingFixture.root.appendingPathComponent(name))
    let image = try ImageDecoder.decode(data)
    let uprightSize = expected["upright_size"]!.arrayValue!.compactMap(\.intValue)
    // The frame boxes are mapped into: the upright image, whose size the header already reports (the server plans with it).
    #expect([image.width, image.height] == uprightSize)
    let header = try ImageDecoder.header(data)
    #expect([header.width, header.height] == uprightSize)
    let truth = expected["upright_rect"]!.arrayValue!.compactMap(\.intValue)
    let found = try #require(redRectangle(image))
    for i in 0..<4 { #expect(abs(found.values[i] - truth[i]) <= 1, "\(name): decoded rectangle \(found.values) vs PIL \(truth)") }

    let frame = ImageFrame(width: image.width, height: image.height)
    for (budget, grid) in expected["image_grid_thw"]!.objectValue! {
        let maxPixels = Int(budget)!
        let g = grid.arrayValue!.compactMap(\.intValue)
        // Exactly the size transformers' processor gives the model.
        let (rh, rw) = try smartResize(height: image.height, width: image.width, factor: 32, minPixels: 4096, maxPixels: maxPixels)
        #expect(rh / 16 == g[1] && rw / 16 == g[2], "\(name) max_pixels \(maxPixels): \(rh)x\(rw) vs grid \(g)")
        // What the model sees, where it sees the rectangle, in its 0–1000 frame...
        let resized = resizeBicubicAntialiased(image, width: rw, height: rh)
        let seen = try #require(redRectangle(resized), "\(name): no red left at \(rw)x\(rh)")
        let answer = try #require(FrameBox([Double(seen.x1) / Double(rw) * 1000, Double(seen.y1) / Double(rh) * 1000,
                                            Double(seen.x2) / Double(rw) * 1000, Double(seen.y2) / Double(rh) * 1000]))
        // ...mapped back lands on the rectangle in the original, within one resized pixel (plus the frame's rounding).
        let back = frame.pixelBox(answer)
        let tolerance = [Double(image.width) / Double(rw), Double(image.height) / Double(rh)].map { $0 + Double(max(image.width, image.height)) / 1000 + 1 }
        for i in 0..<4 {
            #expect(Double(abs(back.values[i] - truth[i])) <= tolerance[i % 2],
                    "\(name) at \(rw)x\(rh): \(back.values) vs \(truth) (tolerance \(tolerance))")
        }
        let worst = (0..<4).map { abs(back.values[$0] - truth[$0]) }.max()!
        print("[grounding] \(name) seen at \(rw)x\(rh): box back in the original \(back.values) vs \(truth), worst |Δ| \(worst) px")
    }
}
