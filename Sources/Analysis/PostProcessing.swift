import Foundation
import JSON

/// Post-processing of schema-valid answers, per task, and light repairs before validation.
public enum PostProcessing {
    // MARK: Repairs

    /// Small repairs a weak model needs before validation: a missing property that may be null becomes
    /// null and a missing array becomes `[]`; a number written as a string becomes a number; a single
    /// string where a list of strings is expected becomes a one-element list; enum strings are matched
    /// case-insensitively; numbers are clamped to the schema's minimum and maximum.
    public static func coerce(_ value: JSONValue, to schema: JSONValue) -> JSONValue {
        guard case .object(let s) = schema else { return value }
        let types: [String] = s["type"]?.stringValue.map { [$0] } ?? (s["type"]?.arrayValue ?? []).compactMap(\.stringValue)
        switch value {
        case .object(var o) where types.contains("object"):
            let properties = s["properties"]?.objectValue ?? [:]
            for key in (s["required"]?.arrayValue ?? []).compactMap(\.stringValue) where o[key] == nil {
                let t = properties[key]?["type"]
                let names = t?.stringValue.map { [$0] } ?? (t?.arrayValue ?? []).compactMap(\.stringValue)
                if names.contains("null") { o[key] = .null } else if names.contains("array") { o[key] = .array([]) }
            }
            for (key, sub) in properties { if let v = o[key] { o[key] = coerce(v, to: sub) } }
            return .object(o)
        case .array(let a) where types.contains("array"):
            guard let items = s["items"] else { return value }
            return .array(a.map { coerce($0, to: items) })
        case .string(let str):
            if (types.contains("number") || types.contains("integer")) && !types.contains("string"), let d = Double(str.trimmingCharacters(in: .whitespaces)) {
                return coerce(JSONValue(d), to: schema)
            }
            if types.contains("array"), s["items"]?["type"] == "string" { return .array([value]) }
            if let options = s["enum"]?.arrayValue, !options.contains(value),
               let match = options.first(where: { $0.stringValue?.lowercased() == str.lowercased().trimmingCharacters(in: .whitespaces) }) {
                return match
            }
            return value
        case .number(let n) where types.contains("number") || types.contains("integer"):
            var d = n.double
            if let minimum = s["minimum"]?.doubleValue { d = max(d, minimum) }
            if let maximum = s["maximum"]?.doubleValue { d = min(d, maximum) }
            return JSONValue(d)
        default:
            return value
        }
    }

    static func strings(_ value: JSONValue?) -> [String] {
        (value?.arrayValue ?? []).compactMap(\.stringValue).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    static func unique(_ items: [String]) -> [String] {
        var seen = Set<String>()
        return items.filter { seen.insert($0.lowercased()).inserted }
    }

    // MARK: ocr

    /// `{"lines": [...], "text": "lines joined by newlines"}`; lines trimmed, empty ones dropped.
    public static func ocr(_ output: JSONValue) -> JSONValue {
        ocrResult(lines: strings(output["lines"]).flatMap { $0.components(separatedBy: "\n") }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    static func ocrResult(lines: [String], tiles: Int? = nil) -> JSONValue {
        var out: JSONObject = ["lines": .array(lines.map { .string($0) }), "text": .string(lines.joined(separator: "\n"))]
        if let tiles { out["tiles"] = JSONValue(Double(tiles)) }
        return .object(out)
    }

    // MARK: describe

    public static func describe(_ output: JSONValue) -> JSONValue {
        var o = output.objectValue ?? [:]
        for key in ["people", "objects", "brands", "text"] { o[key] = .array(unique(strings(o[key])).map { .string($0) }) }
        for key in ["summary", "setting"] { o[key] = .string(o[key]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") }
        return .object(o)
    }

    // MARK: moderation

    /// Absolute and exaggerated advertising terms (China's Advertising Law, art. 9) and English counterparts.
    public static let absoluteTerms: [String] = [
        "国家级", "世界级", "最高级", "最佳", "最好", "最低价", "最便宜", "最优", "最强", "最新科技", "第一", "唯一", "首个", "首选",
        "顶级", "极品", "独家", "全网最", "史上最", "万能", "100%", "百分百", "绝对", "零风险", "永久", "No.1", "NO.1", "#1",
        "best ever", "number one", "guaranteed", "the best",
    ]

    /// Terms found in `text` (each once, in list order).
    public static func absoluteClaims(in text: String) -> [String] {
        let lower = text.lowercased()
        return absoluteTerms.filter { lower.contains($0.lowercased()) }
    }

    /// Categories deduplicated (by category and evidence); a rule-based `absolute_claim` entry (source
    /// `rule`) added when the image text or caption holds such terms and the model named none; the
    /// verdict raised from `allow` to `review` when a category was found; `evidence` boxes in both frames
    /// (`grounded(_:image:)`).
    public static func moderation(_ output: JSONValue, context: PostContext) -> JSONValue {
        var o = output.objectValue ?? [:]
        var seen = Set<String>()
        var categories: [JSONValue] = []
        for item in o["categories"]?.arrayValue ?? [] {
            let key = (item["category"]?.stringValue ?? "") + "|" + (item["evidence"]?.stringValue ?? "")
            if seen.insert(key).inserted { categories.append(item) }
        }
        let modelNamedClaims = categories.contains { $0["category"] == "absolute_claim" }
        if !modelNamedClaims {
            let imageText = strings(o["image_text"]).joined(separator: "\n")
            let caption = context.record.text ?? ""
            let fromImage = absoluteClaims(in: imageText)
            let fromCaption = absoluteClaims(in: caption).filter { !fromImage.contains($0) }
            if !fromImage.isEmpty {
                categories.append(["category": "absolute_claim", "evidence": .string(fromImage.joined(separator: "、")), "source": "rule"])
            }
            if !fromCaption.isEmpty {
                categories.append(["category": "absolute_claim", "evidence": .string(fromCaption.joined(separator: "、")), "source": "rule"])
            }
        }
        o["categories"] = .array(categories)
        o["evidence"] = .array(grounded(o["evidence"]?.arrayValue ?? [], image: context.image))
        o["image_text"] = .array(strings(o["image_text"]).map { .string($0) })
        if o["verdict"] == "allow" && !categories.isEmpty { o["verdict"] = "review" }
        return .object(o)
    }

    // MARK: sentiment

    /// The score clamped to [-1, 1] and rounded to 2 decimals; aspects limited to the five names, one
    /// entry each (the first).
    public static func sentiment(_ output: JSONValue) -> JSONValue {
        var o = output.objectValue ?? [:]
        let score = max(-1, min(1, o["score"]?.doubleValue ?? 0))
        o["score"] = JSONValue((score * 100).rounded() / 100)
        var seen = Set<String>()
        o["aspects"] = .array((o["aspects"]?.arrayValue ?? []).filter { item in
            guard let name = item["aspect"]?.stringValue, TaskSchemas.aspects.contains(name) else { return false }
            return seen.insert(name).inserted
        })
        o["evidence"] = .array(strings(o["evidence"]).map { .string($0) })
        o["image_text"] = .array(strings(o["image_text"]).map { .string($0) })
        return .object(o)
    }

    // MARK: promo

    /// Prices, discounts, mechanics and dates parsed from the text the model copied:
    /// each product gains `price`, `original_price`, `currency`, `discount: {as_stated, multiplier, percent_off}`;
    /// `mechanics` become objects (``PromoParsing/parseMechanic(_:)``); `start` and `end` are
    /// `{"iso": "2026-11-11T00:00", "text": "11.11 0点"}` (null when absent or unparsable: `iso` null, text kept).
    public static func promo(_ output: JSONValue, context: PostContext) -> JSONValue {
        var o = output.objectValue ?? [:]
        let year = context.referenceYear
        var products: [JSONValue] = []
        for item in o["products"]?.arrayValue ?? [] {
            guard var p = item.objectValue else { continue }
            let priceText = p["price_text"]?.stringValue
            let originalText = p["original_price_text"]?.stringValue
            let discountText = p["discount_text"]?.stringValue
            let price = priceText.flatMap { PromoParsing.parsePrice($0) }
            let original = originalText.flatMap { PromoParsing.parsePrice($0) }
            p["price"] = .optional(price?.amount)
            p["original_price"] = .optional(original?.amount)
            p["currency"] = .optional(price?.currency ?? original?.currency ?? (price != nil ? "CNY" : nil))
            var discount: JSONValue = .null
            if let discountText, let d = PromoParsing.parseDiscount(discountText) {
                discount = ["as_stated": .string(discountText), "multiplier": JSONValue(round4(d.multiplier)), "percent_off": JSONValue(d.percentOff)]
            } else if let price, let original, original.amount > 0, price.amount < original.amount {
                let m = round4(price.amount / original.amount)
                discount = ["as_stated": .optional(discountText), "multiplier": JSONValue(m), "percent_off": JSONValue(((1 - m) * 1000).rounded() / 10)]
            } else if let discountText {
                discount = ["as_stated": .string(discountText), "multiplier": .null, "percent_off": .null]
            }
            p["discount"] = discount
            products.append(.object(p))
        }
        o["products"] = .array(products)
        o["mechanics"] = .array(strings(o["mechanics"]).map { PromoParsing.parseMechanic($0) })

        let startText = o["start_text"]?.stringValue, endText = o["end_text"]?.stringValue
        var start: PromoParsing.DateValue? = nil, end: PromoParsing.DateValue? = nil
        if let startText {
            let (a, b) = PromoParsing.parseDateRange(startText, referenceYear: year)
            start = a
            if endText == nil { end = b }
        }
        if let endText { end = PromoParsing.parseDateRange(endText, referenceYear: start?.year ?? year).0 }
        o["start"] = startText == nil ? .null : ["iso": .optional(start?.iso), "text": .optional(startText)]
        o["end"] = endText == nil && end == nil ? .null : ["iso": .optional(end?.iso), "text": .optional(endText ?? startText)]
        o["claims"] = .array(strings(o["claims"]).map { .string($0) })
        o["image_text"] = .array(strings(o["image_text"]).map { .string($0) })
        return .object(o)
    }

    static func round4(_ d: Double) -> Double { (d * 10_000).rounded() / 10_000 }
}
