import Analysis
import JSON

/// One example answer per task: what `FakeEngine` answers, and what docs/tasks.md shows. Test data, so it lives in the
/// test targets, never in the product.
public enum TaskExamples {
    public static func modelOutput(for task: AnalysisTask) -> JSONValue {
        switch task.kind {
        case .ocr:
            return ["lines": ["双11狂欢价", "原价¥1,299", "到手价¥999", "满300减50"]]
        case .describe:
            return [
                "summary": "一位女士在咖啡店里手持一杯拿铁。", "setting": "室内咖啡店",
                "people": ["一位长发女士"], "objects": ["拿铁咖啡", "木桌", "笔记本电脑"], "brands": ["Starbucks"],
                "text": ["STARBUCKS", "新品上市"],
            ]
        case .moderation:
            return [
                "image_text": ["全网最低价", "加微信 abc123 领优惠"], "observations": "一张护肤品海报，右下角有二维码。",
                "categories": [
                    ["category": "absolute_claim", "evidence": "“全网最低价”", "source": "image_text"],
                    ["category": "contact_leak", "evidence": "“加微信 abc123”以及右下角的二维码", "source": "image_text"],
                ],
                "evidence": [
                    ["bbox_2d": [80, 60, 920, 180], "label": "全网最低价", "category": "absolute_claim", "text": "全网最低价"],
                    ["bbox_2d": [700, 760, 960, 980], "label": "二维码", "category": "contact_leak", "text": nil],
                ],
                "verdict": "review",
            ]
        case .sentiment:
            return [
                "image_text": [], "observations": "快递纸箱一角被压扁，里面的杯子完好。",
                "aspects": [
                    ["aspect": "product", "polarity": "positive", "evidence": "杯子很好看"],
                    ["aspect": "delivery", "polarity": "negative", "evidence": "纸箱被压扁"],
                ],
                "mismatches": [["claim": "包装完好", "observed": "纸箱一角被压扁"]],
                "evidence": ["杯子很好看", "纸箱被压扁"], "polarity": "mixed", "score": 0.2,
            ]
        case .promo:
            return [
                "image_text": ["双11狂欢价", "原价¥1,299", "到手价¥999", "7.7折", "满300减50", "11.11 0点开抢", "天猫"],
                "products": [["name": "空气炸锅", "price_text": "到手价¥999", "original_price_text": "原价¥1,299", "discount_text": "7.7折"]],
                "mechanics": ["满300减50"], "start_text": "11.11 0点", "end_text": "11月11日23:59", "platform": "天猫",
                "claims": ["双11狂欢价"],
            ]
        case .detect:
            return [
                "objects": [
                    ["bbox_2d": [700, 760, 960, 980], "label": "二维码", "category": "qr_code", "text": nil],
                    ["bbox_2d": [60, 640, 640, 720], "label": "微信号", "category": "contact", "text": "加微信 abc123 领优惠"],
                    ["bbox_2d": [80, 60, 920, 180], "label": "宣传语", "category": "claim", "text": "全网最低价"],
                ],
            ]
        case .custom:
            return minimalInstance(of: task.schema)
        }
    }

    /// The smallest value that satisfies `schema` (required properties only; null where allowed; the first
    /// enum option; numbers at their minimum or 0).
    public static func minimalInstance(of schema: JSONValue) -> JSONValue {
        if let first = schema["enum"]?.arrayValue?.first { return first }
        let types = schema["type"]?.stringValue.map { [$0] } ?? (schema["type"]?.arrayValue ?? []).compactMap(\.stringValue)
        let type = types.contains("null") ? "null" : types.first ?? "null"
        switch type {
        case "object":
            var o: JSONObject = [:]
            let properties = schema["properties"]?.objectValue ?? [:]
            for key in (schema["required"]?.arrayValue ?? []).compactMap(\.stringValue) {
                o[key] = minimalInstance(of: properties[key] ?? [:])
            }
            return .object(o)
        case "array":
            let n = Int(schema["minItems"]?.doubleValue ?? 0)
            return .array(Array(repeating: minimalInstance(of: schema["items"] ?? [:]), count: n))
        case "string": return ""
        case "number", "integer": return JSONValue(schema["minimum"]?.doubleValue ?? 0)
        case "boolean": return false
        default: return .null
        }
    }
}
