import Foundation
import JSON

/// Numbers, prices, discounts, promotion mechanics and dates as written on Chinese and English
/// shopping posts: `¥1,299`, `1299元`, `1.2万`, `7.5折`, `八折`, `30% off`, `满300减50`, `双11`,
/// `11.11 0点`, `2026年11月11日`. Pure functions; the `promo` task's post-processing is built on them.
public enum PromoParsing {
    // MARK: Numbers

    static let chineseDigits: [Character: Int] = [
        "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
        "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
    ]

    /// Full-width digits and punctuation folded to ASCII; `，` and `．` too.
    public static func normalizeWidth(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            if (0xFF01...0xFF5E).contains(scalar.value), let ascii = Unicode.Scalar(scalar.value - 0xFEE0) {
                out.unicodeScalars.append(ascii)
            } else if scalar == "\u{3000}" {
                out += " "
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A number written with digits (thousands separators allowed) and an optional 万/亿/千/k/w
    /// multiplier, or with Chinese numerals up to 十/百/千/万 (`十二`, `一百五十`, `两万`).
    public static func parseNumber(_ raw: String) -> Double? {
        let s = normalizeWidth(raw).trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return nil }
        var body = s
        var multiplier = 1.0
        if let last = body.last {
            switch last {
            case "万", "w", "W": multiplier = 10_000; body.removeLast()
            case "亿": multiplier = 100_000_000; body.removeLast()
            case "千", "k", "K": multiplier = 1_000; body.removeLast()
            default: break
            }
        }
        let digits = body.replacingOccurrences(of: ",", with: "")
        if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let d = Double(digits) {
            return (d * multiplier * 1e6).rounded() / 1e6
        }
        if let c = parseChineseNumeral(s) { return Double(c) }
        return nil
    }

    /// Chinese numerals: `八` → 8, `十二` → 12, `二十` → 20, `一百零五` → 105, `两万` → 20000.
    public static func parseChineseNumeral(_ s: String) -> Int? {
        guard !s.isEmpty else { return nil }
        var total = 0, section = 0, digit = 0
        var sawAny = false
        for ch in s {
            if let d = chineseDigits[ch] {
                digit = d
                sawAny = true
                continue
            }
            let unit: Int
            switch ch {
            case "十", "拾": unit = 10
            case "百", "佰": unit = 100
            case "千", "仟": unit = 1000
            case "万": unit = 10_000
            case "亿": unit = 100_000_000
            default: return nil
            }
            sawAny = true
            if unit >= 10_000 {
                section += digit
                total += section * unit
                section = 0
            } else {
                section += (digit == 0 && unit == 10 ? 1 : digit) * unit
            }
            digit = 0
        }
        return sawAny ? total + section + digit : nil
    }

    /// The first number in `text` (digits with separators and a decimal point, with a trailing 万/千
    /// when present) and the range it covers.
    static func firstNumber(in text: String) -> (value: Double, range: Range<String.Index>)? {
        let pattern = #"(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*(万|千|[kKwW](?![a-zA-Z]))?"#
        guard let match = text.range(of: pattern, options: .regularExpression) else { return nil }
        let token = String(text[match]).replacingOccurrences(of: " ", with: "")
        guard let value = parseNumber(token) else { return nil }
        return (value, match)
    }

    // MARK: Prices

    public struct Price: Sendable, Equatable {
        public var amount: Double
        /// ISO 4217 code; `nil` when the text names no currency.
        public var currency: String?
    }

    static let currencyMarkers: [(String, String)] = [
        ("HK$", "HKD"), ("HKD", "HKD"), ("港币", "HKD"), ("港元", "HKD"),
        ("NT$", "TWD"), ("新台币", "TWD"), ("US$", "USD"), ("USD", "USD"), ("美元", "USD"), ("美金", "USD"),
        ("RMB", "CNY"), ("CNY", "CNY"), ("人民币", "CNY"), ("¥", "CNY"), ("￥", "CNY"), ("元", "CNY"), ("块", "CNY"),
        ("yuan", "CNY"), ("€", "EUR"), ("EUR", "EUR"), ("欧元", "EUR"), ("£", "GBP"), ("GBP", "GBP"), ("英镑", "GBP"),
        ("JPY", "JPY"), ("日元", "JPY"), ("円", "JPY"), ("$", "USD"),
    ]

    /// `¥1,299` → 1299 CNY, `1299元` → 1299 CNY, `1.2万元` → 12000 CNY, `$19.99` → 19.99 USD,
    /// `到手价 399` → 399 (currency nil), `券后¥89` → 89 CNY. `nil` when the text holds no number.
    public static func parsePrice(_ raw: String, defaultCurrency: String? = nil) -> Price? {
        let text = normalizeWidth(raw)
        guard let (value, _) = firstNumber(in: text) else { return nil }
        var currency: String? = nil
        for (marker, code) in currencyMarkers where text.localizedCaseInsensitiveContains(marker) {
            currency = code
            break
        }
        return Price(amount: value, currency: currency ?? defaultCurrency)
    }

    // MARK: Discounts

    public struct Discount: Sendable, Equatable {
        /// What the buyer pays as a fraction of the price: 7.5折 → 0.75, 30% off → 0.7.
        public var multiplier: Double
        public var percentOff: Double { ((1 - multiplier) * 1000).rounded() / 10 }
    }

    /// `7.5折` → 0.75, `8折` / `八折` → 0.8, `75折` → 0.75, `八五折` → 0.85, `半价` → 0.5,
    /// `30% off` / `-30%` / `省30%` → 0.7, `70% of the price` is not guessed. `nil` when no discount is stated.
    public static func parseDiscount(_ raw: String) -> Discount? {
        let text = normalizeWidth(raw).replacingOccurrences(of: " ", with: "")
        if text.contains("半价") || text.lowercased().contains("halfprice") || text.lowercased().contains("half-price") {
            return Discount(multiplier: 0.5)
        }
        if let r = text.range(of: #"(\d+(?:\.\d+)?)折"#, options: .regularExpression) {
            let number = String(text[r].dropLast())
            guard let d = Double(number), d > 0 else { return nil }
            // "75折" is colloquial for 7.5折; "8折" is 0.8; "0.8折" (rare) is 0.08.
            let m = d >= 10 ? d / 100 : d / 10
            return m > 0 && m < 1 ? Discount(multiplier: m) : nil
        }
        if let r = text.range(of: #"[零一二两三四五六七八九]{1,2}折"#, options: .regularExpression) {
            let numerals = Array(text[r].dropLast())
            let digits = numerals.compactMap { chineseDigits[$0] }
            guard digits.count == numerals.count else { return nil }
            let m = digits.count == 1 ? Double(digits[0]) / 10 : Double(digits[0] * 10 + digits[1]) / 100
            return m > 0 && m < 1 ? Discount(multiplier: m) : nil
        }
        let lower = text.lowercased()
        if let r = lower.range(of: #"(\d+(?:\.\d+)?)%(off|折扣)"#, options: .regularExpression)
            ?? lower.range(of: #"(-|省|减|立减|直降|降)(\d+(?:\.\d+)?)%"#, options: .regularExpression)
            ?? lower.range(of: #"(save|up to|upto)(\d+(?:\.\d+)?)%"#, options: .regularExpression)
        {
            if let (value, _) = firstNumber(in: String(lower[r])), value > 0, value < 100 {
                return Discount(multiplier: (100 - value) / 100)
            }
        }
        return nil
    }

    // MARK: Mechanics

    /// One promotion mechanic as JSON: `{"type": "threshold", "threshold": 300, "off": 50, "per_threshold": false}`,
    /// `{"type": "coupon", "off": 20}`, `{"type": "multi_buy", "quantity": 2, "multiplier": 0.8}`,
    /// `{"type": "bundle", "buy": 1, "get": 1}`, `{"type": "gift"}`, `{"type": "discount", "multiplier": 0.75}`,
    /// `{"type": "price_cut", "off": 100}`, or `{"type": "other"}`; each with `"text"` (the source).
    public static func parseMechanic(_ raw: String) -> JSONValue {
        let text = normalizeWidth(raw).replacingOccurrences(of: " ", with: "")
        let lower = text.lowercased()
        var out: JSONObject = ["text": .string(raw)]
        func number(_ pattern: String, in s: String) -> Double? {
            guard let r = s.range(of: pattern, options: .regularExpression) else { return nil }
            return firstNumber(in: String(s[r]))?.value ?? parseNumber(String(s[r]).filter { chineseDigits[$0] != nil || "十百千万".contains($0) })
        }
        if let r = text.range(of: #"(每)?满\d+(?:\.\d+)?(元)?减\d+(?:\.\d+)?"#, options: .regularExpression) {
            let part = String(text[r])
            let pieces = part.components(separatedBy: "减")
            out["type"] = "threshold"
            out["threshold"] = .optional(firstNumber(in: pieces[0])?.value)
            out["off"] = .optional(firstNumber(in: pieces[1])?.value)
            out["per_threshold"] = .bool(part.hasPrefix("每"))
            return .object(out)
        }
        if let r = lower.range(of: #"(spend|over)\$?\d+(?:\.\d+)?,?(get|save)\$?\d+(?:\.\d+)?off"#, options: .regularExpression) {
            let part = String(lower[r])
            let numbers = part.matches(of: #/\d+(?:\.\d+)?/#).compactMap { Double(String($0.output)) }
            if numbers.count == 2 {
                out["type"] = "threshold"; out["threshold"] = JSONValue(numbers[0]); out["off"] = JSONValue(numbers[1]); out["per_threshold"] = false
                return .object(out)
            }
        }
        if let r = text.range(of: #"满(\d+|[一二两三四五六七八九十]+)件"#, options: .regularExpression) {
            let quantityText = String(text[r]).dropFirst().dropLast()
            out["type"] = "multi_buy"
            out["quantity"] = .optional(parseNumber(String(quantityText)))
            out["multiplier"] = .optional(parseDiscount(String(text[r.upperBound...]))?.multiplier)
            return .object(out)
        }
        if text.contains("第二件") || text.contains("第2件") {
            out["type"] = "multi_buy"
            out["quantity"] = 2
            let rest = text.components(separatedBy: text.contains("第二件") ? "第二件" : "第2件").last ?? ""
            out["second_item_multiplier"] = rest.contains("0元") || rest.contains("免费") ? 0 : .optional(parseDiscount(rest)?.multiplier)
            return .object(out)
        }
        if let r = text.range(of: #"买(\d+|[一二两三四五六七八九十])(送|赠)(\d+|[一二两三四五六七八九十])"#, options: .regularExpression) {
            let part = String(text[r])
            let pieces = part.dropFirst().components(separatedBy: CharacterSet(charactersIn: "送赠"))
            out["type"] = "bundle"
            out["buy"] = .optional(parseNumber(pieces[0]))
            out["get"] = .optional(parseNumber(pieces.last ?? ""))
            return .object(out)
        }
        if let r = lower.range(of: #"buy(\d+|one|two)get(\d+|one|two)"#, options: .regularExpression) {
            let words = ["one": 1.0, "two": 2.0]
            let part = String(lower[r]).dropFirst(3)
            let pieces = part.components(separatedBy: "get")
            out["type"] = "bundle"
            out["buy"] = .optional(Double(pieces[0]) ?? words[pieces[0]])
            out["get"] = .optional(Double(pieces[1]) ?? words[pieces[1]])
            return .object(out)
        }
        if text.contains("券") || lower.contains("coupon") || lower.contains("voucher") {
            out["type"] = "coupon"
            out["off"] = .optional(number(#"(减|立减|抵|¥|￥|\$)?\d+(?:\.\d+)?(元)?"#, in: text))
            return .object(out)
        }
        if let discount = parseDiscount(text) {
            out["type"] = "discount"
            out["multiplier"] = JSONValue(discount.multiplier)
            return .object(out)
        }
        if let r = text.range(of: #"(立减|直降|减|省)\d+(?:\.\d+)?"#, options: .regularExpression) {
            out["type"] = "price_cut"
            out["off"] = .optional(firstNumber(in: String(text[r]))?.value)
            return .object(out)
        }
        if text.contains("赠") || text.contains("送") || lower.contains("gift") || lower.contains("free") {
            out["type"] = "gift"
            return .object(out)
        }
        out["type"] = "other"
        return .object(out)
    }

    // MARK: Dates

    /// A normalized date or date-time: `2026-11-11` or `2026-11-11T20:00`, with the source text kept.
    public struct DateValue: Sendable, Equatable {
        public var year: Int, month: Int, day: Int
        public var hour: Int?, minute: Int?
        public var iso: String {
            let date = String(format: "%04d-%02d-%02d", year, month, day)
            guard let hour else { return date }
            return date + String(format: "T%02d:%02d", hour, minute ?? 0)
        }
    }

    static let festivals: [(String, Int, Int)] = [
        ("双十一", 11, 11), ("双11", 11, 11), ("双十二", 12, 12), ("双12", 12, 12), ("618", 6, 18), ("双旦", 12, 25),
        ("元旦", 1, 1), ("情人节", 2, 14), ("妇女节", 3, 8), ("女神节", 3, 8), ("女王节", 3, 8),
        ("圣诞", 12, 25), ("christmas", 12, 25),
    ]

    static let englishMonths = ["jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12]

    /// A date (and time when stated) in `raw`; a missing year is the reference year. Handles
    /// `2026年11月11日`, `11月11日20:00`, `2026-11-11`, `2026/11/11 10:00`, `11.11 0点`, `11/11`,
    /// `双11`, `618`, `Nov 11, 2026`, `11 November 2026`, times `20:00`, `0点`, `晚8点`, `下午3点半`.
    public static func parseDate(_ raw: String, referenceYear: Int) -> DateValue? {
        let text = normalizeWidth(raw).trimmingCharacters(in: .whitespaces)
        let lower = text.lowercased()
        var result: DateValue?
        var rest = text[...]

        func int(_ s: Substring) -> Int? { Int(s) }
        if let m = text.firstMatch(of: #/(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*[日号]?/#),
           let y = int(m.1), let mo = int(m.2), let d = int(m.3)
        {
            result = DateValue(year: y, month: mo, day: d)
            rest = text[m.range.upperBound...]
        } else if let m = text.firstMatch(of: #/(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?/#), let mo = int(m.1), let d = int(m.2) {
            result = DateValue(year: referenceYear, month: mo, day: d)
            rest = text[m.range.upperBound...]
        } else if let m = lower.firstMatch(of: #/(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?!\d)(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?/#),
                  let mo = englishMonths[String(m.1)], let d = int(m.2)
        {
            result = DateValue(year: m.3.flatMap { Int($0) } ?? referenceYear, month: mo, day: d)
            rest = Substring(String(lower[m.range.upperBound...]))
        } else if let m = lower.firstMatch(of: #/(?:^|[^\d])(\d{1,2})(?:st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(?:,?\s+(\d{4}))?/#),
                  let mo = englishMonths[String(m.2)], let d = int(m.1)
        {
            result = DateValue(year: m.3.flatMap { Int($0) } ?? referenceYear, month: mo, day: d)
            rest = Substring(String(lower[m.range.upperBound...]))
        } else if let m = text.firstMatch(of: #/(?:^|[^\d.:])(\d{1,2})\s*[./]\s*(\d{1,2})(?![\d.%])/#), let mo = int(m.1), let d = int(m.2) {
            result = DateValue(year: referenceYear, month: mo, day: d)
            rest = text[m.range.upperBound...]
        } else {
            for (name, mo, d) in festivals where lower.contains(name) {
                result = DateValue(year: referenceYear, month: mo, day: d)
                if let r = lower.range(of: name) { rest = Substring(String(lower[r.upperBound...])) }
                break
            }
        }
        guard var date = result, (1...12).contains(date.month), (1...31).contains(date.day) else { return nil }
        if let (h, mi) = parseTime(String(rest)) {
            date.hour = h
            date.minute = mi
        }
        return date
    }

    /// `20:00` → (20, 0), `0点` → (0, 0), `晚8点` → (20, 0), `下午3点半` → (15, 30), `10am` → (10, 0), `8pm` → (20, 0).
    public static func parseTime(_ raw: String) -> (Int, Int)? {
        let text = raw.lowercased()
        var hour: Int?, minute = 0
        if let m = text.firstMatch(of: #/(\d{1,2})\s*:\s*(\d{2})/#) {
            hour = Int(m.1); minute = Int(m.2) ?? 0
        } else if let m = text.firstMatch(of: #/(\d{1,2}|[零一二两三四五六七八九十]{1,3})\s*[点时](?:\s*(半|\d{1,2}\s*分?))?/#) {
            hour = Int(m.1) ?? parseChineseNumeral(String(m.1))
            if let mm = m.2 { minute = mm == "半" ? 30 : Int(mm.filter(\.isNumber)) ?? 0 }
        } else if let m = text.firstMatch(of: #/(\d{1,2})\s*(am|pm)/#) {
            hour = Int(m.1).map { h in m.2 == "pm" ? (h % 12) + 12 : h % 12 }
        } else if text.contains("零点") || text.contains("午夜") || text.contains("midnight") {
            hour = 0
        }
        guard var h = hour else { return nil }
        if h < 12, text.contains("晚") || text.contains("下午") || text.contains("傍晚") { h += 12 }
        guard (0...24).contains(h), (0...59).contains(minute) else { return nil }
        return (h == 24 ? 0 : h, minute)
    }

    /// A range such as `11.1-11.11`, `11月1日至11月11日`, `10月20日20:00—11月11日23:59`: (start, end).
    /// A single date gives (date, nil).
    public static func parseDateRange(_ raw: String, referenceYear: Int) -> (DateValue?, DateValue?) {
        let text = normalizeWidth(raw)
        for separator in ["至", "到", "~", "～", "—", "–", " - ", "-", " until ", " to "] {
            let parts = text.components(separatedBy: separator)
            // A "-" inside 2026-11-11 is not a range separator: require both sides to parse.
            if parts.count == 2, let a = parseDate(parts[0], referenceYear: referenceYear) {
                var b = parseDate(parts[1], referenceYear: a.year)
                if b == nil, let time = parseTime(parts[1]), !parts[1].contains(where: { $0 == "月" || $0 == "." || $0 == "/" }) {
                    b = DateValue(year: a.year, month: a.month, day: a.day, hour: time.0, minute: time.1)
                }
                if let b { return (a, b) }
            }
        }
        return (parseDate(text, referenceYear: referenceYear), nil)
    }
}
