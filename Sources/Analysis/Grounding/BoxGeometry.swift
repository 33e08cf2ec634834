import JSON

/// A box in Qwen3-VL's grounding frame: `[x1, y1, x2, y2]` in 0…1000 relative to the image's width and height
/// (Qwen3-VL writes `bbox_2d` this way; Qwen2.5-VL used absolute pixels of the resized image instead).
/// Normalised on creation: the corners ordered, each value clamped to 0…1000 and rounded to an integer.
public struct FrameBox: Sendable, Equatable, Hashable {
    public static let scale = 1000
    public let x1: Int, y1: Int, x2: Int, y2: Int

    /// nil for anything that is not four finite numbers spanning a non-empty area.
    public init?(_ values: [Double]) {
        guard values.count == 4, values.allSatisfy(\.isFinite) else { return nil }
        func clamp(_ v: Double) -> Int { Int(min(Double(Self.scale), max(0, v)).rounded()) }
        let xs = [clamp(values[0]), clamp(values[2])].sorted(), ys = [clamp(values[1]), clamp(values[3])].sorted()
        guard xs[0] < xs[1], ys[0] < ys[1] else { return nil }
        (x1, y1, x2, y2) = (xs[0], ys[0], xs[1], ys[1])
    }

    /// A `bbox_2d` JSON value (an array of four numbers), or nil.
    public init?(json: JSONValue?) {
        guard let values = json?.arrayValue, values.count == 4 else { return nil }
        let numbers = values.compactMap(\.doubleValue)
        guard numbers.count == 4 else { return nil }
        self.init(numbers)
    }

    public var values: [Int] { [x1, y1, x2, y2] }
    public var json: JSONValue { .array(values.map { JSONValue(Double($0)) }) }
}

/// A box in pixels of an image: `x1..<x2` × `y1..<y2` (edges, so a box over a whole W×H image is `[0, 0, W, H]`).
public struct PixelBox: Sendable, Equatable, Hashable {
    public let x1: Int, y1: Int, x2: Int, y2: Int
    public init(x1: Int, y1: Int, x2: Int, y2: Int) {
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
    }
    public var values: [Int] { [x1, y1, x2, y2] }
    public var json: JSONValue { .array(values.map { JSONValue(Double($0)) }) }
}

/// The original image a grounding answer is about: its size in pixels after EXIF orientation (what
/// `ImageDecoder.decode` returns, what a viewer shows).
///
/// Why the mapping is this simple, and exact: the processor (`smart_resize` + antialiased bicubic) maps the whole
/// original onto the whole resized image, one scale per axis (`wb / W`, `hb / H`; pixel edges to pixel edges, as in
/// PIL) — no padding, no cropping. The model sees the resized image and writes positions relative to it in 0…1000.
/// A relative position is the same in both images, so a frame value `v` is `v / 1000 · W` pixels of the original
/// whatever the resize did, aspect-ratio rounding to multiples of 32 included. `resizedCoordinate` spells out
/// the two steps (frame → resized pixels → original pixels) for the tests that check this against the processor.
/// Engines that pad or letterbox the image break this identity; that is where "shifted boxes" come from.
public struct ImageFrame: Sendable, Equatable, Hashable {
    public let width: Int
    public let height: Int

    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "an image frame needs a positive size, got \(width)x\(height)")
        self.width = width
        self.height = height
    }

    /// `value` (0…1000) on an axis of `length` pixels, rounded half up with integer arithmetic.
    static func pixels(_ value: Int, length: Int) -> Int {
        (2 * value * length + FrameBox.scale) / (2 * FrameBox.scale)
    }

    /// `pixel` (0…length) in the 0…1000 frame, rounded half up.
    static func frame(_ pixel: Int, length: Int) -> Int {
        let p = min(max(0, pixel), length)
        return (2 * p * FrameBox.scale + length) / (2 * length)
    }

    /// The box in pixels of this image.
    public func pixelBox(_ box: FrameBox) -> PixelBox {
        PixelBox(x1: Self.pixels(box.x1, length: width), y1: Self.pixels(box.y1, length: height),
                 x2: Self.pixels(box.x2, length: width), y2: Self.pixels(box.y2, length: height))
    }

    /// A pixel box of this image in the 0…1000 frame (nil when it has no area there).
    public func frameBox(_ box: PixelBox) -> FrameBox? {
        FrameBox([Self.frame(box.x1, length: width), Self.frame(box.y1, length: height),
                  Self.frame(box.x2, length: width), Self.frame(box.y2, length: height)].map(Double.init))
    }

    /// The two steps the model's answer goes through, unrounded: a frame value is a position in the resized image
    /// the model saw (`resized` pixels along an axis), which the resize scaled from `original` pixels.
    public static func resizedCoordinate(_ value: Double, resized: Int, original: Int) -> (resized: Double, original: Double) {
        let inResized = value / Double(FrameBox.scale) * Double(resized)
        return (inResized, inResized * Double(original) / Double(resized))
    }
}
