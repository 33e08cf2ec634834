/// One part of a message's content.
public enum ContentPart: Sendable, Equatable {
    case text(String)
    /// An image; its pixels travel separately (by position: the n-th image part is the n-th image).
    case image
}

public enum ChatRole: String, Sendable, Codable {
    case system, user, assistant, tool
}

public struct ChatMessage: Sendable, Equatable {
    public var role: ChatRole
    public var content: [ContentPart]
    /// An assistant turn's reasoning (OpenAI-compatible servers' `reasoning_content`). Thinking templates render it
    /// only for turns after the last user question; the Instruct template never does.
    public var reasoning: String?

    public init(role: ChatRole, content: [ContentPart], reasoning: String? = nil) {
        self.role = role
        self.content = content
        self.reasoning = reasoning
    }

    public init(role: ChatRole, text: String) {
        self.init(role: role, content: [.text(text)])
    }

    public var imageCount: Int { content.filter { $0 == .image }.count }
}

/// A rendered prompt as a sequence of pieces: text that goes through BPE, control tokens inserted by
/// the template itself, and image placeholders. Keeping control tokens apart from text means a user
/// who types `<|im_start|>` gets those characters, never a new turn (spec §5.3).
public enum PromptPiece: Sendable, Equatable {
    case text(String)
    case control(String)
    /// `<|vision_start|>` + N × `<|image_pad|>` + `<|vision_end|>` for image number `index`.
    case image(index: Int)
}

/// The Qwen3-VL chat templates (spec §6), rendered natively: the same output as the model's Jinja
/// `chat_template` under `apply_chat_template` (trim_blocks, lstrip_blocks) for system, user, assistant and tool
/// turns, without a Jinja engine. `.instruct` is the Instruct models' template; `.thinking` the Thinking models'
/// (`ChatTemplateKind`, `ThinkingTemplate.swift`).
public enum ChatTemplate {
    /// Renders `messages` to pieces. `addVisionID` prefixes images with "Picture n: " (the template's
    /// `add_vision_id`). A system message counts only in first position, as in the reference template.
    /// `thinking` (thinking template only): false closes the think block at once (`<think>\n\n</think>\n\n`), so the
    /// model answers without reasoning.
    public static func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, addVisionID: Bool = false,
                              kind: ChatTemplateKind = .instruct, thinking: Bool = true) -> [PromptPiece] {
        if kind == .thinking {
            return renderThinking(messages, addGenerationPrompt: addGenerationPrompt, addVisionID: addVisionID, thinking: thinking)
        }
        var out = TemplateWriter(addVisionID: addVisionID)
        out.firstSystem(messages)
        for (index, message) in messages.enumerated() {
            switch message.role {
            case .system:
                continue
            case .user:
                out.turn("user", message.content)
            case .assistant:
                out.turn("assistant", message.content.filter { if case .text = $0 { return true } else { return false } })
            case .tool:
                out.tool(messages, at: index)
            }
        }
        if addGenerationPrompt { out.openAssistant() }
        return out.pieces.pieces
    }

    /// The prompt as one string, each image as a single `<|image_pad|>` — what `apply_chat_template` returns.
    public static func text(of pieces: [PromptPiece]) -> String {
        pieces.map { piece -> String in
            switch piece {
            case .text(let text): return text
            case .control(let token): return token
            case .image: return "<|vision_start|><|image_pad|><|vision_end|>"
            }
        }.joined()
    }
}

/// What the Instruct and Thinking templates write alike: the first system message, a plain turn, content parts
/// (images counted across the conversation for `add_vision_id`), grouped tool responses, the assistant header.
struct TemplateWriter {
    var pieces = PieceBuilder()
    let addVisionID: Bool
    private var imageCount = 0

    init(addVisionID: Bool) { self.addVisionID = addVisionID }

    mutating func control(_ token: String) { pieces.control(token) }
    mutating func text(_ text: String) { pieces.text(text) }

    /// A system message in first position: its text parts only.
    mutating func firstSystem(_ messages: [ChatMessage]) {
        guard let first = messages.first, first.role == .system else { return }
        turn("system", first.content.filter { if case .text = $0 { return true } else { return false } })
    }

    /// `<|im_start|>role\n` content `<|im_end|>\n`.
    mutating func turn(_ role: String, _ content: [ContentPart]) {
        control("<|im_start|>")
        text(role + "\n")
        self.content(content)
        control("<|im_end|>")
        text("\n")
    }

    mutating func content(_ parts: [ContentPart]) {
        for part in parts {
            switch part {
            case .text(let t):
                text(t)
            case .image:
                imageCount += 1
                if addVisionID { text("Picture \(imageCount): ") }
                pieces.image(imageCount - 1)
            }
        }
    }

    /// A tool message: consecutive ones share one user turn, each wrapped in `<tool_response>`.
    mutating func tool(_ messages: [ChatMessage], at index: Int) {
        if index == 0 || messages[index - 1].role != .tool {
            control("<|im_start|>")
            text("user")
        }
        text("\n")
        control("<tool_response>")
        text("\n")
        content(messages[index].content)
        text("\n")
        control("</tool_response>")
        if index == messages.count - 1 || messages[index + 1].role != .tool {
            control("<|im_end|>")
            text("\n")
        }
    }

    /// The generation prompt's header, `<|im_start|>assistant\n`.
    mutating func openAssistant() {
        control("<|im_start|>")
        text("assistant\n")
    }
}

/// Appends pieces, merging adjacent text so that BPE sees the same spans the reference tokenizer sees
/// between special tokens.
struct PieceBuilder {
    var pieces: [PromptPiece] = []

    mutating func text(_ text: String) {
        guard !text.isEmpty else { return }
        if case .text(let previous)? = pieces.last {
            pieces[pieces.count - 1] = .text(previous + text)
        } else {
            pieces.append(.text(text))
        }
    }

    mutating func control(_ token: String) { pieces.append(.control(token)) }

    mutating func image(_ index: Int) { pieces.append(.image(index: index)) }
}
