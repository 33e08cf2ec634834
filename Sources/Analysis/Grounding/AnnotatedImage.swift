import Imaging
import JSON

/// One located thing of a result (`detect`'s objects, `moderation`'s evidence) in pixels of the original image.
public struct GroundedItem: Sendable, Equatable {
    public var label: String
    public var category: String?
    public var box: PixelBox
}

/// Draws a result's boxes onto its image: one colour per box, an outline, and a numbered tag above the box
/// (`1 qr_code`). The bitmap font is ASCII only, so a label in another script is shown by its number and category;
/// the result's JSON line holds the full label under the same position.
public enum AnnotatedImage {
    /// Distinct, saturated colours that read on photos and screenshots alike; white text reads on all of them.
    public static let palette: [RGBColor] = [
        RGBColor(230, 25, 75), RGBColor(0, 130, 200), RGBColor(60, 160, 40), RGBColor(245, 130, 48),
        RGBColor(145, 30, 180), RGBColor(0, 128, 128), RGBColor(170, 110, 40), RGBColor(128, 0, 0),
    ]

    /// The grounded items of a post-processed `detect` or `moderation` result, in order; empty for other results.
    public static func items(in result: JSONValue) -> [GroundedItem] {
        let list = result["objects"]?.arrayValue ?? result["evidence"]?.arrayValue ?? []
        return list.compactMap { item in
            guard let v = item["bbox_px"]?.arrayValue?.compactMap(\.intValue), v.count == 4 else { return nil }
            return GroundedItem(label: item["label"]?.stringValue ?? "", category: item["category"]?.stringValue,
                                box: PixelBox(x1: v[0], y1: v[1], x2: v[2], y2: v[3]))
        }
    }

    /// The tag drawn for item `index` (0-based): its number, then the label when the font can draw it, else the
    /// category, cut to `maxCharacters`.
    public static func tag(_ item: GroundedItem, index: Int, maxCharacters: Int = 28) -> String {
        var tag = "\(index + 1)"
        let label = item.label.trimmingCharacters(in: .whitespacesAndNewlines)
        if !label.isEmpty, BitmapFont.canDraw(label) {
            tag += " " + label
        } else if let category = item.category, !category.isEmpty, BitmapFont.canDraw(category) {
            tag += " " + category
        }
        return tag.count > maxCharacters ? String(tag.prefix(maxCharacters - 1)) + "~" : tag
    }

    /// Line width and font scale for an image: about 0.4 % and 0.25 % of its shorter side, at least 2 and 1 pixels.
    public static func strokeWidth(width: Int, height: Int) -> Int { max(2, min(width, height) / 250) }
    public static func fontScale(width: Int, height: Int) -> Int { max(1, min(width, height) / 400) }

    /// `image` (the original, upright) with `items` drawn on it, at the same size.
    public static func draw(_ image: RGBImage, items: [GroundedItem]) -> RGBImage {
        var out = image
        let stroke = strokeWidth(width: image.width, height: image.height)
        let scale = fontScale(width: image.width, height: image.height)
        for (index, item) in items.enumerated() {
            let color = palette[index % palette.count]
            let b = item.box
            out.strokeRectangle(x0: b.x1, y0: b.y1, x1: b.x2, y1: b.y2, thickness: stroke, color: color)
            let text = tag(item, index: index)
            let size = RGBImage.textSize(text, scale: scale)
            let pad = scale * 2
            let tagHeight = size.height + 2 * pad
            // Above the box when there is room, else just inside its top edge.
            let top = b.y1 - tagHeight >= 0 ? b.y1 - tagHeight : b.y1
            let left = min(max(0, b.x1), max(0, image.width - size.width - 2 * pad))
            out.fill(x0: left, y0: top, x1: left + size.width + 2 * pad, y1: top + tagHeight, color: color)
            out.draw(text: text, x: left + pad, y: top + pad, scale: scale, color: .white)
        }
        return out
    }
}
