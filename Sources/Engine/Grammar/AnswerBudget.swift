import Foundation
import JSON

/// The most tokens a constrained answer can take under a schema: what `max_tokens` must allow for the answer always to
/// close (the analysis tasks check it when a request is made, `AnalysisTask.worstCaseTokens`).
///
/// The grammar writes compact JSON, so every byte outside string contents — braces, keys, commas, numbers, literals,
/// enum values, a string's opening quote — is at most one token (a token is never empty). A string with `maxLength` N
/// (and no pattern) takes at most N + 1 tokens after its opening quote: the automaton counts the tokens that begin
/// inside it and lets the one after the N-th only close it (`JSONGrammar.tokenStarts`), whatever the tokens' sizes.
/// So the bound holds even for a model that writes one byte per token, such as a random-weight one.
public enum AnswerBudget {
    /// nil when an answer can grow without bound: a string without `maxLength` (or with a pattern), an array without
    /// `maxItems`, a free-form value.
    public static func worstCaseTokens(_ schema: JSONSchema) -> Int? { tokens(schema.root) }

    static func tokens(_ node: JSONSchema.Node) -> Int? {
        switch node {
        case .any: return nil
        case .boolean: return 5
        case .null: return 4
        case .enumeration(let values): return values.map { $0.compactText.utf8.count }.max() ?? 0
        case .anyOf(let options):
            var most = 0
            for option in options {
                guard let n = tokens(option) else { return nil }
                most = max(most, n)
            }
            return most
        case .object(let properties, let additional):
            if properties.isEmpty && additional { return nil }
            var total = 2 + max(0, properties.count - 1)  // { } and the commas
            for property in properties {
                guard let value = tokens(property.schema) else { return nil }
                total += JSONWriter.quoted(property.name).utf8.count + 1 + value  // "name": value
            }
            return total
        case .array(let items, _, let maxItems):
            guard let maxItems else { return nil }
            guard maxItems > 0 else { return 2 }
            guard let item = tokens(items) else { return nil }
            return 2 + maxItems * item + (maxItems - 1)
        case .string(let minLength, let maxLength, let pattern):
            guard let maxLength, pattern == nil else { return nil }
            // An escape may take six tokens before its character counts toward minLength.
            return 1 + max(maxLength, 6 * minLength) + 1
        case .integer(let minimum, let maximum):
            return numberBytes(minimum.map { Decimal($0) }, maximum.map { Decimal($0) }, fraction: false)
        case .number(let minimum, let maximum, _, _):
            return numberBytes(minimum, maximum, fraction: true)
        }
    }

    /// A sign, the integer digits the bounds allow (15 without bounds, as the automaton writes), and for numbers a
    /// point and six fraction digits.
    static func numberBytes(_ minimum: Decimal?, _ maximum: Decimal?, fraction: Bool) -> Int {
        var digits = 15
        if let minimum, let maximum {
            let magnitude = max(abs(minimum), abs(maximum))
            digits = min(15, max(1, NSDecimalNumber(decimal: magnitude).int64Value.description.count))
        }
        let sign = (minimum.map { $0 < 0 } ?? true) ? 1 : 0
        return sign + digits + (fraction ? 7 : 0)
    }
}
