import JSON

/// The answer schemas, in the validator's subset; property order in the prompts follows the
/// "look, extract the text, then reason" order the model does best with.
///
/// Every string has a `maxLength` and every array a `maxItems`, sized for what the task's answer needs (a poster's
/// lines, a handful of products, one finding per category), so that the constrained answer always closes: the grammar
/// lets a string take at most `maxLength` tokens, and the most tokens an answer can take follows from the schema
/// (`AnalysisTask.worstCaseTokens`, checked against `max_tokens` when a request is made). A model stuck in a loop
/// (the repetition Qwen-VL OCR is known for) runs into these limits and still gives a valid answer.
public enum TaskSchemas {
    /// A string of at most `maxLength` characters (and tokens).
    static func text(_ maxLength: Int) -> JSONValue { ["type": "string", "maxLength": JSONValue(maxLength)] }
    /// A string or null.
    static func optionalText(_ maxLength: Int) -> JSONValue { ["type": ["string", "null"], "maxLength": JSONValue(maxLength)] }
    /// At most `maxItems` strings of at most `maxLength` characters.
    static func texts(_ maxItems: Int, _ maxLength: Int) -> JSONValue {
        ["type": "array", "maxItems": JSONValue(maxItems), "items": text(maxLength)]
    }
    /// At most `maxItems` objects of `properties`, all required, in this order.
    static func objects(_ maxItems: Int, _ properties: KeyValuePairs<String, JSONValue>) -> JSONValue {
        ["type": "array", "maxItems": JSONValue(maxItems), "items": object(properties)]
    }
    /// An object whose properties are all required, in this order.
    static func object(_ properties: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(JSONObject([("type", "object"),
                            ("properties", .object(JSONObject(properties.map { ($0.key, $0.value) }))),
                            ("required", .array(properties.map { .string($0.key) }))]))
    }

    /// Version 2: at most 32 lines of 80 characters per image (or per tile of a long image, see `DenseText`).
    public static let ocr: JSONValue = object(["lines": texts(32, 80)])

    /// Version 2: bounded.
    public static let describe: JSONValue = object([
        "summary": text(160),
        "setting": text(40),
        "people": texts(6, 40),
        "objects": texts(10, 40),
        "brands": texts(6, 30),
        "text": texts(12, 60),
    ])

    public static let moderationCategories: [String] = [
        "absolute_claim", "false_efficacy", "prohibited_goods", "sexual", "violence", "hate", "gambling", "contact_leak", "minors",
    ]

    static func enumeration(_ values: [String]) -> JSONValue { ["type": "string", "enum": .array(values.map { .string($0) })] }

    /// Version 3: bounds sized for a post (version 2 allowed answers of about 20,000 tokens), with `evidence`, where
    /// the image shows each finding (grounding boxes, see `TaskSchemas.box`).
    public static let moderation: JSONValue = object([
        "image_text": texts(12, 60),
        "observations": text(200),
        "categories": objects(6, [
            "category": enumeration(moderationCategories),
            "evidence": text(80),
            "source": enumeration(["image_text", "image", "caption"]),
        ]),
        "evidence": objects(6, [
            "bbox_2d": box,
            "label": ["type": "string", "minLength": 1, "maxLength": 30],
            "category": enumeration(moderationCategories),
            "text": optionalText(60),
        ]),
        "verdict": enumeration(["allow", "review", "block"]),
    ])

    public static let aspects: [String] = ["product", "delivery", "service", "price", "gift"]
    static let polarity: JSONValue = enumeration(["positive", "negative", "neutral", "mixed"])

    /// Version 2: bounded (one aspect entry per aspect at most).
    public static let sentiment: JSONValue = object([
        "image_text": texts(12, 60),
        "observations": text(200),
        "aspects": objects(5, ["aspect": enumeration(aspects), "polarity": polarity, "evidence": text(60)]),
        "mismatches": objects(3, ["claim": text(60), "observed": text(60)]),
        "evidence": texts(5, 60),
        "polarity": polarity,
        "score": ["type": "number", "minimum": -1, "maximum": 1],
    ])

    /// Version 2: bounded.
    public static let promo: JSONValue = object([
        "image_text": texts(16, 60),
        "products": objects(4, [
            "name": text(40),
            "price_text": optionalText(30),
            "original_price_text": optionalText(30),
            "discount_text": optionalText(30),
        ]),
        "mechanics": texts(6, 40),
        "start_text": optionalText(30),
        "end_text": optionalText(30),
        "platform": optionalText(30),
        "claims": texts(6, 40),
    ])
}
