import JSON

/// The answer schemas, in the validator's subset; property order in the prompts follows the
/// "look, extract the text, then reason" order the model does best with.
public enum TaskSchemas {
    static let stringArray: JSONValue = ["type": "array", "items": ["type": "string"]]
    static let nullableString: JSONValue = ["type": ["string", "null"]]

    public static let ocr: JSONValue = [
        "type": "object",
        "properties": ["lines": stringArray],
        "required": ["lines"],
    ]

    public static let describe: JSONValue = [
        "type": "object",
        "properties": [
            "summary": ["type": "string"],
            "setting": ["type": "string"],
            "people": stringArray,
            "objects": stringArray,
            "brands": stringArray,
            "text": stringArray,
        ],
        "required": ["summary", "setting", "people", "objects", "brands", "text"],
    ]

    public static let moderationCategories: [String] = [
        "absolute_claim", "false_efficacy", "prohibited_goods", "sexual", "violence", "hate", "gambling", "contact_leak", "minors",
    ]

    /// Version 2: bounded (every string has a `maxLength`, every array a `maxItems`, so a constrained answer always
    /// closes) and with `evidence`, where the image shows each finding (grounding boxes, see `TaskSchemas.box`).
    public static let moderation: JSONValue = [
        "type": "object",
        "properties": [
            "image_text": ["type": "array", "maxItems": 40, "items": ["type": "string", "maxLength": 200]],
            "observations": ["type": "string", "maxLength": 600],
            "categories": [
                "type": "array",
                "maxItems": 12,
                "items": [
                    "type": "object",
                    "properties": [
                        "category": ["type": "string", "enum": .array(moderationCategories.map { .string($0) })],
                        "evidence": ["type": "string", "maxLength": 300],
                        "source": ["type": "string", "enum": ["image_text", "image", "caption"]],
                    ],
                    "required": ["category", "evidence", "source"],
                ],
            ],
            "evidence": [
                "type": "array",
                "maxItems": 12,
                "items": [
                    "type": "object",
                    "properties": [
                        "bbox_2d": box,
                        "label": ["type": "string", "minLength": 1, "maxLength": 60],
                        "category": ["type": "string", "enum": .array(moderationCategories.map { .string($0) })],
                        "text": ["type": ["string", "null"], "maxLength": 200],
                    ],
                    "required": ["bbox_2d", "label", "category", "text"],
                ],
            ],
            "verdict": ["type": "string", "enum": ["allow", "review", "block"]],
        ],
        "required": ["image_text", "observations", "categories", "evidence", "verdict"],
    ]

    public static let aspects: [String] = ["product", "delivery", "service", "price", "gift"]
    static let polarity: JSONValue = ["type": "string", "enum": ["positive", "negative", "neutral", "mixed"]]

    public static let sentiment: JSONValue = [
        "type": "object",
        "properties": [
            "image_text": stringArray,
            "observations": ["type": "string"],
            "aspects": [
                "type": "array",
                "items": [
                    "type": "object",
                    "properties": [
                        "aspect": ["type": "string", "enum": .array(aspects.map { .string($0) })],
                        "polarity": polarity,
                        "evidence": ["type": "string"],
                    ],
                    "required": ["aspect", "polarity", "evidence"],
                ],
            ],
            "mismatches": [
                "type": "array",
                "items": [
                    "type": "object",
                    "properties": ["claim": ["type": "string"], "observed": ["type": "string"]],
                    "required": ["claim", "observed"],
                ],
            ],
            "evidence": stringArray,
            "polarity": polarity,
            "score": ["type": "number", "minimum": -1, "maximum": 1],
        ],
        "required": ["image_text", "observations", "aspects", "mismatches", "evidence", "polarity", "score"],
    ]

    public static let promo: JSONValue = [
        "type": "object",
        "properties": [
            "image_text": stringArray,
            "products": [
                "type": "array",
                "items": [
                    "type": "object",
                    "properties": [
                        "name": ["type": "string"],
                        "price_text": nullableString,
                        "original_price_text": nullableString,
                        "discount_text": nullableString,
                    ],
                    "required": ["name", "price_text", "original_price_text", "discount_text"],
                ],
            ],
            "mechanics": stringArray,
            "start_text": nullableString,
            "end_text": nullableString,
            "platform": nullableString,
            "claims": stringArray,
        ],
        "required": ["image_text", "products", "mechanics", "start_text", "end_text", "platform", "claims"],
    ]
}
