/// Detects user stop strings in streamed text and holds back text that might be the start of one, so a stop string is
/// never partly sent to the client.
///
/// Works on UTF-8 bytes, never on `Character`s: a piece that begins with a combining mark (Thai vowels, Devanagari
/// signs, emoji modifiers and ZWJ sequences) merges into the previous grapheme cluster, so counting characters lost
/// such pieces from the stream while the full text kept them. Every piece the detokenizer hands over is whole UTF-8,
/// and a stop string's first byte always starts a scalar, so each cut below falls on a scalar boundary: the emitted
/// pieces concatenate to exactly `fullText`, byte for byte. Stop strings match as byte (hence scalar) sequences, as
/// in vLLM. Each `append` costs O((piece + longest stop) × stops), not the length of the text so far.
public struct StopSequences: Sendable {
    public let strings: [String]
    private let stops: [[UInt8]]
    private var text: [UInt8] = []
    /// Bytes of `text` already released.
    private var emitted = 0

    public init(_ strings: [String]) {
        self.strings = strings.filter { !$0.isEmpty }
        stops = self.strings.map { Array($0.utf8) }
    }

    /// Adds decoded text; returns the part that is safe to emit and whether a stop string was found (in which case
    /// the text up to, not including, the stop string is all that is ever emitted).
    public mutating func append(_ piece: String) -> (emit: String, stopped: Bool) {
        let before = text.count
        text.append(contentsOf: piece.utf8)
        if let cut = firstStop(newSince: before) {
            let out = String(decoding: text[emitted..<max(emitted, cut)], as: UTF8.self)
            text.removeSubrange(cut...)
            emitted = text.count
            return (out, true)
        }
        let end = max(emitted, text.count - heldBack())
        let out = String(decoding: text[emitted..<end], as: UTF8.self)
        emitted = end
        return (out, false)
    }

    /// Text held back at the end of generation (no stop string came).
    public mutating func flush() -> String {
        let out = String(decoding: text[emitted...], as: UTF8.self)
        emitted = text.count
        return out
    }

    /// The full text so far (without a stop string that ended it).
    public var fullText: String { String(decoding: text, as: UTF8.self) }

    /// The earliest start of a stop string that ends in the bytes added since `before` (earlier ones were found then).
    private func firstStop(newSince before: Int) -> Int? {
        var best: Int?
        for stop in stops where stop.count <= text.count {
            var start = max(0, before - stop.count + 1)
            let last = text.count - stop.count
            while start <= last, best.map({ start < $0 }) ?? true {
                if text[start] == stop[0] && text[start..<(start + stop.count)].elementsEqual(stop) {
                    best = start
                    break
                }
                start += 1
            }
        }
        return best
    }

    /// Length of the longest suffix of the text that is a proper prefix of some stop string.
    private func heldBack() -> Int {
        var hold = 0
        for stop in stops {
            var length = min(stop.count - 1, text.count)
            while length > hold {
                if text[(text.count - length)...].elementsEqual(stop[..<length]) {
                    hold = length
                    break
                }
                length -= 1
            }
        }
        return hold
    }
}
