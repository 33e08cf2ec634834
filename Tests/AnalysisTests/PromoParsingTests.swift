@testable import Analysis
import JSON
import Testing
import TestSupport

/// A price case: text → amount and currency.
struct PriceCase: Sendable, CustomStringConvertible {
    let text: String, amount: Double?, currency: String?
    var description: String { text }
}

let priceCases: [PriceCase] = [
    .init(text: "¥1,299", amount: 1299, currency: "CNY"),
    .init(text: "1299元", amount: 1299, currency: "CNY"),
    .init(text: "￥99.9", amount: 99.9, currency: "CNY"),
    .init(text: "到手价¥999", amount: 999, currency: "CNY"),
    .init(text: "原价：2,599.00元", amount: 2599, currency: "CNY"),
    .init(text: "1.2万", amount: 12000, currency: nil),
    .init(text: "1.5万元", amount: 15000, currency: "CNY"),
    .init(text: "RMB 199", amount: 199, currency: "CNY"),
    .init(text: "$19.99", amount: 19.99, currency: "USD"),
    .init(text: "US$ 1,049", amount: 1049, currency: "USD"),
    .init(text: "HK$88", amount: 88, currency: "HKD"),
    .init(text: "€45", amount: 45, currency: "EUR"),
    .init(text: "£12.50", amount: 12.5, currency: "GBP"),
    .init(text: "券后价 89", amount: 89, currency: nil),
    .init(text: "１２９元", amount: 129, currency: "CNY"),
    .init(text: "59 yuan", amount: 59, currency: "CNY"),
    .init(text: "活动价 3k", amount: 3000, currency: nil),
    .init(text: "价格待定", amount: nil, currency: nil),
]

@Test(arguments: priceCases) func prices(_ c: PriceCase) {
    let p = PromoParsing.parsePrice(c.text)
    #expect(p?.amount == c.amount, "\(c.text)")
    if c.amount != nil { #expect(p?.currency == c.currency, "\(c.text)") }
}

struct DiscountCase: Sendable, CustomStringConvertible {
    let text: String, multiplier: Double?
    var description: String { text }
}

let discountCases: [DiscountCase] = [
    .init(text: "7.5折", multiplier: 0.75),
    .init(text: "8折", multiplier: 0.8),
    .init(text: "八折", multiplier: 0.8),
    .init(text: "八五折", multiplier: 0.85),
    .init(text: "五折起", multiplier: 0.5),
    .init(text: "75折", multiplier: 0.75),
    .init(text: "全场3.8折", multiplier: 0.38),
    .init(text: "半价", multiplier: 0.5),
    .init(text: "30% off", multiplier: 0.7),
    .init(text: "-20%", multiplier: 0.8),
    .init(text: "Save 15%", multiplier: 0.85),
    .init(text: "up to 50% OFF", multiplier: 0.5),
    .init(text: "直降10%", multiplier: 0.9),
    .init(text: "包邮", multiplier: nil),
]

@Test(arguments: discountCases) func discounts(_ c: DiscountCase) {
    let d = PromoParsing.parseDiscount(c.text)
    if let m = c.multiplier {
        #expect(d != nil && abs(d!.multiplier - m) < 1e-9, "\(c.text): \(String(describing: d))")
    } else {
        #expect(d == nil, "\(c.text)")
    }
}

@Test func percentOffFollowsTheMultiplier() {
    #expect(PromoParsing.parseDiscount("7.5折")?.percentOff == 25)
    #expect(PromoParsing.parseDiscount("八五折")?.percentOff == 15)
}

struct DateCase: Sendable, CustomStringConvertible {
    let text: String, start: String?, end: String?
    var description: String { text }
}

/// Reference year 2026 for dates without one.
let dateCases: [DateCase] = [
    .init(text: "2026年11月11日", start: "2026-11-11", end: nil),
    .init(text: "双11", start: "2026-11-11", end: nil),
    .init(text: "双十一当天", start: "2026-11-11", end: nil),
    .init(text: "11.11 0点", start: "2026-11-11T00:00", end: nil),
    .init(text: "11月11日20:00", start: "2026-11-11T20:00", end: nil),
    .init(text: "2026-11-11 10:30", start: "2026-11-11T10:30", end: nil),
    .init(text: "2026/12/12", start: "2026-12-12", end: nil),
    .init(text: "12月12日晚8点", start: "2026-12-12T20:00", end: nil),
    .init(text: "11月1日下午3点半", start: "2026-11-01T15:30", end: nil),
    .init(text: "618", start: "2026-06-18", end: nil),
    .init(text: "双12", start: "2026-12-12", end: nil),
    .init(text: "Nov 11, 2026", start: "2026-11-11", end: nil),
    .init(text: "11 November 2027", start: "2027-11-11", end: nil),
    .init(text: "Dec 24 8pm", start: "2026-12-24T20:00", end: nil),
    .init(text: "11.1-11.11", start: "2026-11-01", end: "2026-11-11"),
    .init(text: "11月1日至11月11日", start: "2026-11-01", end: "2026-11-11"),
    .init(text: "10月20日20:00—11月11日23:59", start: "2026-10-20T20:00", end: "2026-11-11T23:59"),
    .init(text: "11.11 0点-2点", start: "2026-11-11T00:00", end: "2026-11-11T02:00"),
    .init(text: "２０２６年１１月１１日", start: "2026-11-11", end: nil),
    .init(text: "限时抢购", start: nil, end: nil),
]

@Test(arguments: dateCases) func dates(_ c: DateCase) {
    let (start, end) = PromoParsing.parseDateRange(c.text, referenceYear: 2026)
    #expect(start?.iso == c.start, "\(c.text)")
    #expect(end?.iso == c.end, "\(c.text)")
}

struct MechanicCase: Sendable, CustomStringConvertible {
    let text: String, expected: JSONValue
    var description: String { text }
}

let mechanicCases: [MechanicCase] = [
    .init(text: "满300减50", expected: ["type": "threshold", "threshold": 300, "off": 50, "per_threshold": false]),
    .init(text: "每满200减30", expected: ["type": "threshold", "threshold": 200, "off": 30, "per_threshold": true]),
    .init(text: "满199元减20", expected: ["type": "threshold", "threshold": 199, "off": 20, "per_threshold": false]),
    .init(text: "Spend $100, get $15 off", expected: ["type": "threshold", "threshold": 100, "off": 15, "per_threshold": false]),
    .init(text: "领券立减20元", expected: ["type": "coupon", "off": 20]),
    .init(text: "满2件8折", expected: ["type": "multi_buy", "quantity": 2, "multiplier": 0.8]),
    .init(text: "第二件半价", expected: ["type": "multi_buy", "quantity": 2, "second_item_multiplier": 0.5]),
    .init(text: "买一送一", expected: ["type": "bundle", "buy": 1, "get": 1]),
    .init(text: "买2赠1", expected: ["type": "bundle", "buy": 2, "get": 1]),
    .init(text: "Buy one get one free", expected: ["type": "bundle", "buy": 1, "get": 1]),
    .init(text: "直降100", expected: ["type": "price_cut", "off": 100]),
    .init(text: "下单送精美礼品", expected: ["type": "gift"]),
]

@Test(arguments: mechanicCases) func mechanics(_ c: MechanicCase) {
    var parsed = PromoParsing.parseMechanic(c.text).objectValue ?? [:]
    #expect(parsed.removeValue(forKey: "text") == .string(c.text))
    #expect(JSONValue.object(parsed) == c.expected, "\(c.text): \(JSONValue.object(parsed).sortedText)")
}

@Test func theTableHasAtLeastFortyStrings() {
    #expect(priceCases.count + discountCases.count + dateCases.count + mechanicCases.count >= 40)
}

@Test func chineseNumerals() {
    #expect(PromoParsing.parseChineseNumeral("十二") == 12)
    #expect(PromoParsing.parseChineseNumeral("二十") == 20)
    #expect(PromoParsing.parseChineseNumeral("一百零五") == 105)
    #expect(PromoParsing.parseChineseNumeral("两万") == 20000)
    #expect(PromoParsing.parseChineseNumeral("三千五百") == 3500)
    #expect(PromoParsing.parseNumber("1,299.50") == 1299.5)
    #expect(PromoParsing.parseNumber("abc") == nil)
}

@Test func promoPostProcessingFillsNumbersAndISODates() throws {
    let task = try AnalysisTask.builtIn(.promo)
    let record = PostRecord(id: "p1", image: nil, text: nil, meta: ["date": "2026-10-30"])
    let result = try task.result(fromModelOutput: TaskExamples.modelOutput(for: task).sortedText,
                                 context: PostContext(record: record, referenceYear: PostContext.referenceYear(for: record, fallback: 2000)))
    let product = try #require(result["products"]?.arrayValue?.first)
    #expect(product["price"] == 999)
    #expect(product["original_price"] == 1299)
    #expect(product["currency"] == "CNY")
    #expect(product["discount"] == ["as_stated": "7.7折", "multiplier": 0.77, "percent_off": 23])
    #expect(result["start"] == ["iso": "2026-11-11T00:00", "text": "11.11 0点"])
    #expect(result["end"] == ["iso": "2026-11-11T23:59", "text": "11月11日23:59"])
    #expect(result["mechanics"]?.arrayValue?.first?["type"] == "threshold")
}

@Test func discountIsComputedFromPricesWhenNotStated() throws {
    let output: JSONValue = ["image_text": [], "products": [["name": "A", "price_text": "¥80", "original_price_text": "¥100", "discount_text": nil]],
                        "mechanics": [], "start_text": nil, "end_text": nil, "platform": nil, "claims": []]
    let task = try AnalysisTask.builtIn(.promo)
    let result = try task.result(fromModelOutput: output.sortedText, context: PostContext(record: PostRecord(id: "x"), referenceYear: 2026))
    let discount = try #require(result["products"]?.arrayValue?.first?["discount"])
    #expect(discount["multiplier"] == 0.8)
    #expect(discount["percent_off"] == 20)
    #expect(result["start"] == .null && result["end"] == .null)
}
