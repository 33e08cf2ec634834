import Foundation

/// Why an image cannot be turned into patches.
public enum ImageProcessingError: Error, CustomStringConvertible, Equatable {
    /// `max(h, w) / min(h, w) > 200` — transformers' smart_resize refuses such images.
    case aspectRatioTooLarge(width: Int, height: Int)
    /// A zero or negative dimension, or pixel budget.
    case invalidSize(String)

    public var description: String {
        switch self {
        case let .aspectRatioTooLarge(width, height):
            let ratio = Double(max(width, height)) / Double(max(1, min(width, height)))
            return "image aspect ratio must be at most 200, got \(width)x\(height) (ratio \(ratio)); "
                + "crop or pad the image"
        case let .invalidSize(message):
            return "invalid image size: \(message)"
        }
    }
}

/// transformers `smart_resize` (models/qwen2_vl/image_processing_qwen2_vl.py, 5.24; qwen3vl-spec.md §2.3):
/// the target size whose sides are multiples of `factor`, whose area lies in `[minPixels, maxPixels]`, and whose
/// aspect ratio is as close as possible to the input's. Python's `round` is half-to-even; everything in Double.
public func smartResize(height: Int, width: Int, factor: Int = 32, minPixels: Int, maxPixels: Int) throws
    -> (height: Int, width: Int)
{
    guard height > 0, width > 0 else { throw ImageProcessingError.invalidSize("\(width)x\(height) image") }
    guard factor > 0, minPixels > 0, maxPixels >= minPixels else {
        throw ImageProcessingError.invalidSize("factor \(factor), min_pixels \(minPixels), max_pixels \(maxPixels)")
    }
    let h = Double(height), w = Double(width), f = Double(factor)
    if max(h, w) / min(h, w) > 200 { throw ImageProcessingError.aspectRatioTooLarge(width: width, height: height) }
    var hBar = Int((h / f).rounded(.toNearestOrEven)) * factor
    var wBar = Int((w / f).rounded(.toNearestOrEven)) * factor
    if hBar * wBar > maxPixels {
        let beta = ((h * w) / Double(maxPixels)).squareRoot()
        hBar = max(factor, Int((h / beta / f).rounded(.down)) * factor)
        wBar = max(factor, Int((w / beta / f).rounded(.down)) * factor)
    } else if hBar * wBar < minPixels {
        let beta = (Double(minPixels) / (h * w)).squareRoot()
        hBar = Int((h * beta / f).rounded(.up)) * factor
        wBar = Int((w * beta / f).rounded(.up)) * factor
    }
    return (hBar, wBar)
}
