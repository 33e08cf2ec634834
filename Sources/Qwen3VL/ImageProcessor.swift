import Foundation
import Imaging

// Qwen3-VL image preprocessing (qwen3vl-spec.md §2): RGBImage ─► smart_resize ─► PIL bicubic resize
// ─► rescale + normalise ─► patchify in merge-window order ─► pixel_values [N, C·T·P·P].
//
// Notation: P patch size (16), T temporal patch size (2), M merge size (2), C = 3 channels,
// gh × gw patch grid, N = gh·gw patches, N / M² image tokens.

// MARK: - Configuration

/// The image-processor half of `preprocessor_config.json`. Missing keys take the Qwen3-VL values (§2.1), never the
/// Qwen2-VL class defaults (patch 14, CLIP mean/std) that transformers would fall back to.
public struct PreprocessorConfiguration: Sendable, Codable, Equatable {
    public var patchSize: Int
    public var temporalPatchSize: Int
    public var mergeSize: Int
    /// Lower bound on the resized area in pixels (`size.shortest_edge`, legacy `min_pixels`).
    public var minPixels: Int
    /// Upper bound on the resized area in pixels (`size.longest_edge`, legacy `max_pixels`).
    public var maxPixels: Int
    /// Per-channel R, G, B mean and standard deviation applied after scaling samples to [0, 1].
    public var imageMean: [Float]
    public var imageStd: [Float]

    /// Qwen3-VL-2B-Instruct's values: patch 16, temporal 2, merge 2, 256² … 4096² pixels, mean = std = 0.5.
    public static let qwen3VL = PreprocessorConfiguration()

    public init(patchSize: Int = 16, temporalPatchSize: Int = 2, mergeSize: Int = 2, minPixels: Int = 65_536,
                maxPixels: Int = 16_777_216, imageMean: [Float] = [0.5, 0.5, 0.5],
                imageStd: [Float] = [0.5, 0.5, 0.5]) {
        self.patchSize = patchSize
        self.temporalPatchSize = temporalPatchSize
        self.mergeSize = mergeSize
        self.minPixels = minPixels
        self.maxPixels = maxPixels
        self.imageMean = imageMean
        self.imageStd = imageStd
    }

    /// Reads and validates `preprocessor_config.json`. Errors name the file and the offending key.
    public static func load(from url: URL) throws -> PreprocessorConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PreprocessorConfigurationError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        do {
            return try JSONDecoder().decode(PreprocessorConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw PreprocessorConfigurationError(decoding: error, file: url.path)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case patchSize = "patch_size", temporalPatchSize = "temporal_patch_size", mergeSize = "merge_size"
        case size, minPixels = "min_pixels", maxPixels = "max_pixels"
        case imageMean = "image_mean", imageStd = "image_std"
        case doResize = "do_resize", doRescale = "do_rescale", doNormalize = "do_normalize"
        case doConvertRGB = "do_convert_rgb", rescaleFactor = "rescale_factor", resample
    }

    private enum SizeKeys: String, CodingKey {
        case shortestEdge = "shortest_edge", longestEdge = "longest_edge"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PreprocessorConfiguration()
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        temporalPatchSize = try c.decodeIfPresent(Int.self, forKey: .temporalPatchSize) ?? d.temporalPatchSize
        mergeSize = try c.decodeIfPresent(Int.self, forKey: .mergeSize) ?? d.mergeSize
        minPixels = d.minPixels
        maxPixels = d.maxPixels
        if c.contains(.size), try !c.decodeNil(forKey: .size) {
            let size = try c.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
            minPixels = try size.decodeIfPresent(Int.self, forKey: .shortestEdge) ?? minPixels
            maxPixels = try size.decodeIfPresent(Int.self, forKey: .longestEdge) ?? maxPixels
        }
        // Legacy top-level keys win, as in transformers' Qwen2VLImageProcessor.__init__.
        minPixels = try c.decodeIfPresent(Int.self, forKey: .minPixels) ?? minPixels
        maxPixels = try c.decodeIfPresent(Int.self, forKey: .maxPixels) ?? maxPixels
        imageMean = try Self.decodeTriple(c, .imageMean) ?? d.imageMean
        imageStd = try Self.decodeTriple(c, .imageStd) ?? d.imageStd

        // Switches this processor cannot honour: refuse rather than silently produce different pixels.
        for key in [CodingKeys.doResize, .doRescale, .doNormalize, .doConvertRGB] {
            if try c.decodeIfPresent(Bool.self, forKey: key) == false {
                throw DecodingError.dataCorruptedError(forKey: key, in: c,
                    debugDescription: "only true is supported (Qwen3-VL always resizes, rescales, normalises)")
            }
        }
        if let factor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor), abs(factor - 1.0 / 255.0) > 1e-9 {
            throw DecodingError.dataCorruptedError(forKey: .rescaleFactor, in: c,
                debugDescription: "only 1/255 is supported, got \(factor)")
        }
        if let resample = try c.decodeIfPresent(Int.self, forKey: .resample), resample != 3 {
            throw DecodingError.dataCorruptedError(forKey: .resample, in: c,
                debugDescription: "only 3 (bicubic) is supported, got \(resample)")
        }

        func bad(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: message)
        }
        if patchSize <= 0 { throw bad(.patchSize, "must be positive, got \(patchSize)") }
        if temporalPatchSize <= 0 { throw bad(.temporalPatchSize, "must be positive, got \(temporalPatchSize)") }
        if mergeSize <= 0 { throw bad(.mergeSize, "must be positive, got \(mergeSize)") }
        if minPixels <= 0 { throw bad(.size, "shortest_edge (min pixels) must be positive, got \(minPixels)") }
        if maxPixels < minPixels {
            throw bad(.size, "longest_edge (max pixels) \(maxPixels) is below shortest_edge (min pixels) \(minPixels)")
        }
        if imageStd.contains(0) { throw bad(.imageStd, "must not contain 0") }
    }

    /// A 3-element list, or one number applied to all channels.
    private static func decodeTriple(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Float]? {
        guard c.contains(key) else { return nil }
        if let one = try? c.decode(Float.self, forKey: key) { return [one, one, one] }
        let values = try c.decode([Float].self, forKey: key)
        guard values.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c,
                debugDescription: "expected 3 values (R, G, B), got \(values.count)")
        }
        return values
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(patchSize, forKey: .patchSize)
        try c.encode(temporalPatchSize, forKey: .temporalPatchSize)
        try c.encode(mergeSize, forKey: .mergeSize)
        var size = c.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
        try size.encode(minPixels, forKey: .shortestEdge)
        try size.encode(maxPixels, forKey: .longestEdge)
        try c.encode(imageMean, forKey: .imageMean)
        try c.encode(imageStd, forKey: .imageStd)
    }
}

/// A `preprocessor_config.json` that cannot be used.
public enum PreprocessorConfigurationError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case malformed(file: String, reason: String)
    case invalidValue(file: String, key: String, reason: String)

    init(decoding error: DecodingError, file: String) {
        func path(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            return keys.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .typeMismatch(type, context):
            self = .invalidValue(file: file, key: path(context), reason: "expected \(type): \(context.debugDescription)")
        case let .valueNotFound(type, context):
            self = .invalidValue(file: file, key: path(context), reason: "missing \(type) value")
        case let .keyNotFound(key, context):
            self = .invalidValue(file: file, key: path(context, key), reason: "required key missing")
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                self = .malformed(file: file, reason: "not valid JSON: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)")
            } else {
                self = .invalidValue(file: file, key: path(context), reason: context.debugDescription)
            }
        @unknown default:
            self = .malformed(file: file, reason: "\(error)")
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "cannot read preprocessor config \(file): \(reason)"
        case let .malformed(file, reason): return "malformed preprocessor config \(file): \(reason)"
        case let .invalidValue(file, key, reason): return "preprocessor config \(file), key \"\(key)\": \(reason)"
        }
    }
}

// MARK: - Output

/// One image's patches, ready for the vision tower.
public struct ProcessedImage: Sendable {
    /// `[N, C·T·P·P]` = `[N, 1536]`, rows in merge-window order (§2.6), values `(p/255 − mean)/std`.
    public let pixelValues: [Float]
    /// `image_grid_thw`: always 1 frame for a still image, then patch rows and columns.
    public let gridT: Int
    public let gridH: Int
    public let gridW: Int
    public let mergeSize: Int

    public init(pixelValues: [Float], gridT: Int, gridH: Int, gridW: Int, mergeSize: Int = 2) {
        self.pixelValues = pixelValues
        self.gridT = gridT
        self.gridH = gridH
        self.gridW = gridW
        self.mergeSize = mergeSize
    }

    /// N, the number of rows of `pixelValues`.
    public var patchCount: Int { gridT * gridH * gridW }
    /// Image placeholder tokens in the prompt: N / M².
    public var tokenCount: Int { patchCount / (mergeSize * mergeSize) }
}

// MARK: - Processor

/// transformers' `Qwen2VLImageProcessor` as configured for Qwen3-VL (PIL backend semantics).
public struct ImageProcessor: Sendable {
    public let configuration: PreprocessorConfiguration
    /// Normalised value per channel and sample: `lookup[c * 256 + p]`.
    private let lookup: [Float]

    public init(configuration: PreprocessorConfiguration = .qwen3VL) {
        self.configuration = configuration
        var lookup = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            let mean = Double(configuration.imageMean[c]), std = Double(configuration.imageStd[c])
            for p in 0..<256 { lookup[c * 256 + p] = Float((Double(p) / 255.0 - mean) / std) }
        }
        self.lookup = lookup
    }

    /// Resizes (smart_resize + PIL bicubic), normalises and patchifies one image. `minPixels` / `maxPixels`
    /// override the configured budget for this image only.
    public func process(_ image: RGBImage, minPixels: Int? = nil, maxPixels: Int? = nil) throws -> ProcessedImage {
        let cfg = configuration
        let (height, width) = try smartResize(
            height: image.height, width: image.width, factor: cfg.patchSize * cfg.mergeSize,
            minPixels: minPixels ?? cfg.minPixels, maxPixels: maxPixels ?? cfg.maxPixels)
        let resized = resizeBicubicAntialiased(image, width: width, height: height)
        return patchify(resized)
    }

    /// Cuts an image whose sides are multiples of P·M into `[N, C·T·P·P]` rows in merge-window order:
    /// row `n = ((br·(gw/M) + bc)·M + r)·M + c` is the patch at pixel `((br·M + r)·P, (bc·M + c)·P)`;
    /// column `((ch·T + t)·P + y)·P + x`, every temporal copy identical.
    func patchify(_ image: RGBImage) -> ProcessedImage {
        let p = configuration.patchSize, t = configuration.temporalPatchSize, m = configuration.mergeSize
        precondition(image.width % (p * m) == 0 && image.height % (p * m) == 0,
                     "patchify needs sides divisible by \(p * m), got \(image.width)x\(image.height)")
        let gh = image.height / p, gw = image.width / p
        let plane = p * p                 // one channel of one patch
        let rowLength = 3 * t * plane     // C·T·P·P
        let width = image.width
        let values = [Float](unsafeUninitializedCapacity: gh * gw * rowLength) { out, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                lookup.withUnsafeBufferPointer { lut in
                    let s = src.baseAddress!, o = out.baseAddress!, l = lut.baseAddress!
                    var n = 0
                    for br in 0..<(gh / m) {
                        for bc in 0..<(gw / m) {
                            for r in 0..<m {
                                for c in 0..<m {
                                    let py = (br * m + r) * p, px = (bc * m + c) * p
                                    let row = o + n * rowLength
                                    for ch in 0..<3 {
                                        let dst = row + ch * t * plane
                                        let table = l + ch * 256
                                        for y in 0..<p {
                                            let line = s + ((py + y) * width + px) * 3 + ch
                                            let d = dst + y * p
                                            for x in 0..<p { d[x] = table[Int(line[3 * x])] }
                                        }
                                        for copy in 1..<max(t, 1) {
                                            (dst + copy * plane).update(from: dst, count: plane)
                                        }
                                    }
                                    n += 1
                                }
                            }
                        }
                    }
                }
            }
            initialized = gh * gw * rowLength
        }
        return ProcessedImage(pixelValues: values, gridT: 1, gridH: gh, gridW: gw, mergeSize: m)
    }
}
