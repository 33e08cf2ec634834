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

    /// `detect`: located objects, Qwen's own grounding fields first (`bbox_2d`, `label`), then a category and the
    /// text the object carries. Bounded throughout so that constrained output always closes.
    public static let detect: JSONValue = [
        "type": "object",
        "properties": [
            "objects": [
                "type": "array",
                "maxItems": 32,
                "items": [
                    "type": "object",
                    "properties": [
                        "bbox_2d": box,
                        "label": ["type": "string", "minLength": 1, "maxLength": 60],
                        "category": ["type": ["string", "null"], "enum": .array(detectCategories.map { .string($0) } + [.null])],
                        "text": ["type": ["string", "null"], "maxLength": 200],
                    ],
                    "required": ["bbox_2d", "label", "category", "text"],
                ],
            ],
        ],
        "required": ["objects"],
    ]
}
