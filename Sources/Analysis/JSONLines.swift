import Foundation
import JSON

/// A JSON-lines input (`postlens analyze`, `postlens jobs submit`, `POST /v1/batches`) split into its lines and parsed
/// once, under limits: each line within `Limits.perLine` (nesting depth, bytes, values), and all the lines together
/// within `Limits.totalValues`. The total matters for the server: a 40 MB body of ten thousand small lines must not
/// cost more memory than one 40 MB chat body, whose value count the request limits bound.
///
/// Splitting comes first and parses nothing, so a caller can refuse too many records before any parsing work.
public enum JSONLines {
    /// One non-blank line: its 1-based number in the input and its value, or why it was refused.
    public struct Line: Sendable {
        public let number: Int
        public let value: Result<JSONValue, Refusal>
    }

    /// Why a line has no value: malformed JSON, or a limit (`isLimit`, with the limit in `reason`).
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public let isLimit: Bool
        /// Set when the line itself was fine but the input's total of values had run out before it.
        public let totalExhausted: Bool
        public var description: String { reason }
    }

    public struct Limits: Sendable, Equatable {
        public var perLine: JSONParser.Limits
        /// Values (scalars, arrays, objects) of all the lines together.
        public var totalValues: Int

        public init(perLine: JSONParser.Limits, totalValues: Int = .max) {
            self.perLine = perLine
            self.totalValues = totalValues
        }

        /// Files read by the command line (`postlens analyze`, `postlens jobs submit`): the nesting depth of a server
        /// request body (128), and one line at most as large as a request body may be (40 MB); the file as a whole is
        /// bounded by its size (`BatchInput.Limits`).
        public static let input = Limits(perLine: JSONParser.Limits(maxDepth: 128, maxBytes: 40 * 1024 * 1024))
    }

    /// The non-blank lines of `text` (a leading byte-order mark dropped, `\n` or `\r\n` ends), trimmed, with their
    /// 1-based numbers in the input.
    public static func split(_ text: String) -> [(number: Int, text: String)] {
        var body = Substring(text)
        if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
        return body.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated().compactMap {
            let line = $0.element.trimmingCharacters(in: .whitespacesAndNewlines)
            return line.isEmpty ? nil : ($0.offset + 1, line)
        }
    }

    /// Parses each line once, in order. Once the lines so far hold `limits.totalValues` values, a line that needs
    /// more is refused with `totalExhausted` set (and so is every line after it that has any value at all).
    public static func parse(_ lines: [(number: Int, text: String)], limits: Limits) -> [Line] {
        var remaining = limits.totalValues
        return lines.map { number, text in
            var perLine = limits.perLine
            perLine.maxValues = min(perLine.maxValues, remaining)
            do throws(JSONParseError) {
                let value = try JSONParser.parse(Array(text.utf8), limits: perLine)
                remaining -= valueCount(value)
                return Line(number: number, value: .success(value))
            } catch {
                if case .tooManyValues = error.kind, perLine.maxValues < limits.perLine.maxValues {
                    return Line(number: number, value: .failure(Refusal(
                        reason: "the lines together have more than \(limits.totalValues) JSON values", isLimit: true, totalExhausted: true)))
                }
                return Line(number: number, value: .failure(Refusal(reason: error.isLimit ? error.reason : error.description,
                                                                    isLimit: error.isLimit, totalExhausted: false)))
            }
        }
    }

    /// `split` then `parse`.
    public static func parse(_ text: String, limits: Limits) -> [Line] { parse(split(text), limits: limits) }

    /// Values as the parser counts them: every scalar, array and object, members' values included.
    static func valueCount(_ value: JSONValue) -> Int {
        switch value {
        case .array(let items): 1 + items.reduce(0) { $0 + valueCount($1) }
        case .object(let members): 1 + members.reduce(0) { $0 + valueCount($1.value) }
        default: 1
        }
    }
}
