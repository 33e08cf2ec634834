import Testing
@testable import Qwen3VL

/// Property-based test of the chat template on hostile conversations (issue 13 §1: chat-template inputs): random
/// roles in any order, any number of text and image parts, and text that spells control tokens, template words,
/// newlines and lone combining marks. Whatever the input, the rendering keeps every text byte as text (a user who
/// types `<|im_start|>` never opens a turn), numbers the images 0, 1, 2… in order, and balances every turn.
@Test func hostileConversationsRenderSafely() {
    var state: UInt64 = 0xC4A7_7E3B
    func next(_ bound: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(bound))
    }
    let words = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<tool_response>", "</tool_response>",
                 "user\n", "assistant", "system", "\n", "\r\n", "\u{301}", "\u{0}", "图片", "🏳️‍🌈", "Picture 1: ", " "]
    let roles: [ChatRole] = [.system, .user, .assistant, .tool]
    for round in 0..<500 {
        var messages: [ChatMessage] = []
        for _ in 0..<(1 + next(6)) {
            var parts: [ContentPart] = []
            for _ in 0..<next(5) {
                if next(3) == 0 {
                    parts.append(.image)
                } else {
                    parts.append(.text((0..<next(6)).map { _ in words[next(words.count)] }.joined()))
                }
            }
            messages.append(ChatMessage(role: roles[next(roles.count)], content: parts))
        }
        let addGenerationPrompt = next(2) == 0, addVisionID = next(2) == 0
        let pieces = ChatTemplate.render(messages, addGenerationPrompt: addGenerationPrompt, addVisionID: addVisionID)
        let controls = pieces.compactMap { if case .control(let c) = $0 { return c } else { return nil } }
        let texts = pieces.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
        let images = pieces.compactMap { if case .image(let i) = $0 { return i } else { return nil } }

        // Every control token the template emits is one of its own; turns open and close in pairs, in order.
        #expect(controls.allSatisfy { ["<|im_start|>", "<|im_end|>", "<tool_response>", "</tool_response>"].contains($0) },
                "round \(round): \(controls)")
        var open = 0, toolOpen = 0
        for c in controls {
            switch c {
            case "<|im_start|>": open += 1
            case "<|im_end|>": open -= 1
            case "<tool_response>": toolOpen += 1
            case "</tool_response>": toolOpen -= 1
            default: break
            }
            #expect(open >= 0 && open <= 1 && toolOpen >= 0 && toolOpen <= 1, "round \(round): \(controls)")
        }
        #expect(open == (addGenerationPrompt ? 1 : 0) && toolOpen == 0, "round \(round): unbalanced \(controls)")

        // Images: user and tool turns keep theirs, numbered in order (assistant and system images are dropped,
        // as the reference template drops them).
        let kept = messages.enumerated().filter { $0.element.role == .user || $0.element.role == .tool }
            .map(\.element.imageCount).reduce(0, +)
        #expect(images == Array(0..<kept), "round \(round): images \(images), expected \(kept)")

        // All the user's text is in the text pieces, byte for byte and in order (never turned into control tokens).
        // Compared as UTF-8: a combining mark at the start of one part joins the previous part's last character.
        let bytes = Array(texts.utf8)
        var from = 0
        for (index, message) in messages.enumerated() where message.role != .system || index == 0 {
            for case .text(let t) in message.content where !t.isEmpty {
                let needle = Array(t.utf8)
                guard let at = (from...max(from, bytes.count - needle.count)).first(where: {
                    $0 + needle.count <= bytes.count && bytes[$0..<($0 + needle.count)].elementsEqual(needle)
                }) else {
                    Issue.record("round \(round): text \(t.debugDescription) missing from the rendered text")
                    break
                }
                from = at + needle.count
            }
        }
    }
}
