/// Detects user stop strings in streamed text and holds back text that might be the start of one,
/// so a stop string is never partly sent to the client.
public struct StopSequences: Sendable {
    public let strings: [String]
    private(set) var text = ""
    private var emitted = 0  // characters of `text` already released

    public init(_ strings: [String]) {
        self.strings = strings.filter { !$0.isEmpty }
    }

    /// Adds decoded text; returns the part that is safe to emit and whether a stop string was found
    /// (in which case the text up to, not including, the stop string is all that is ever emitted).
    public mutating func append(_ piece: String) -> (emit: String, stopped: Bool) {
        text += piece
        let characters = Array(text)
        if let cut = firstStop(in: characters) {
            let out = String(characters[emitted..<max(emitted, cut)])
            emitted = characters.count
            text = String(characters[..<cut])
            return (out, true)
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        var hold = 0
        for stop in strings {
            let s = Array(stop)
            for length in stride(from: min(s.count - 1, characters.count), to: 0, by: -1)
            where Array(characters[(characters.count - length)...]) == Array(s[..<length]) {
                hold = max(hold, length)
                break
            }
        }
        let end = max(emitted, characters.count - hold)
        let out = String(characters[emitted..<end])
        emitted = end
        return (out, false)
    }

    /// Text held back at the end of generation (no stop string came).
    public mutating func flush() -> String {
        let characters = Array(text)
        let out = emitted < characters.count ? String(characters[emitted...]) : ""
        emitted = characters.count
        return out
    }

    /// The full text so far (without a stop string that ended it).
    public var fullText: String { text }

    private func firstStop(in characters: [Character]) -> Int? {
        var best: Int?
        for stop in strings {
            let s = Array(stop)
            guard s.count <= characters.count else { continue }
            // Only positions that can end at or after the unreleased region need checking.
            let firstStart = max(0, emitted - s.count + 1)
            var i = firstStart
            while i + s.count <= characters.count {
                if Array(characters[i..<(i + s.count)]) == s {
                    if best == nil || i < best! { best = i }
                    break
                }
                i += 1
            }
        }
        return best
    }
}
