import JSON

extension TaskSchemas {
    /// Qwen3-VL's grounding box: `[x1, y1, x2, y2]`, integers in 0…1000 relative to the image (`FrameBox`).
    public static let box: JSONValue = [
        "type": "array", "minItems": 4, "maxItems": 4, "items": ["type": "integer", "minimum": 0, "maximum": 1000],
    ]

    /// What `detect` sorts its objects into (nullable: the model may not know).
    public static let detectCategories: [String] = [
        "qr_code", "contact", "url", "logo", "product", "price", "claim", "text", "person", "other",
    ]

    /// `detect` (version 2): located objects, Qwen's own grounding fields first (`bbox_2d`, `label`), then a category
    /// and the text the object carries. Bounded so that constrained output always closes (16 objects; version 1
    /// allowed 32 with 200-character texts, some 10,000 tokens).
    public static let detect: JSONValue = object([
        "objects": objects(16, [
            "bbox_2d": box,
            "label": ["type": "string", "minLength": 1, "maxLength": 30],
            "category": ["type": ["string", "null"], "enum": .array(detectCategories.map { .string($0) } + [.null])],
            "text": optionalText(60),
        ]),
    ])
}
