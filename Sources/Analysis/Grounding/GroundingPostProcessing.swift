import JSON

extension PostProcessing {
    /// Grounded items (`detect`'s objects, `moderation`'s evidence) with both coordinate frames: `bbox_2d` normalised
    /// (corners ordered, clamped to 0…1000) and `bbox_px`, the same box in pixels of the original image after EXIF
    /// orientation. Items whose box is not four numbers spanning an area are dropped, and so are exact repeats (same
    /// label and box). Without an image there is nothing to point at: every item is dropped.
    static func grounded(_ items: [JSONValue], image: ImageFrame?) -> [JSONValue] {
        guard let image else { return [] }
        var seen = Set<String>()
        var out: [JSONValue] = []
        for item in items {
            guard var o = item.objectValue, let box = FrameBox(json: o["bbox_2d"]) else { continue }
            let label = (o["label"]?.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard seen.insert(label.lowercased() + "|" + box.values.map(String.init).joined(separator: ",")).inserted else { continue }
            o["label"] = .string(label)
            o["bbox_2d"] = box.json
            o["bbox_px"] = image.pixelBox(box).json
            if let text = o["text"]?.stringValue {
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                o["text"] = trimmed.isEmpty ? .null : .string(trimmed)
            }
            out.append(.object(o))
        }
        return out
    }

    /// `detect`: the objects with both frames and the image's size (`image_size: [width, height]`, the frame of
    /// `bbox_px`). A post without an image cannot be grounded: that is the item's error.
    public static func detect(_ output: JSONValue, context: PostContext) throws -> JSONValue {
        guard let image = context.image else { throw TaskError("the detect task needs an image") }
        var o = output.objectValue ?? [:]
        o["objects"] = .array(grounded(o["objects"]?.arrayValue ?? [], image: image))
        o["image_size"] = [JSONValue(Double(image.width)), JSONValue(Double(image.height))]
        return .object(o)
    }

    /// The text form of grounded items for CSV cells: `label [x1,y1,x2,y2]` joined by `; `, in the frame `key` names.
    static func boxCell(_ items: [JSONValue], key: String) -> String {
        items.compactMap { item -> String? in
            guard let values = item[key]?.arrayValue?.compactMap(\.doubleValue), values.count == 4 else { return nil }
            let label = item["label"]?.stringValue ?? ""
            return label + " [" + values.map { JSONNumber($0).text }.joined(separator: ",") + "]"
        }.joined(separator: "; ")
    }
}
