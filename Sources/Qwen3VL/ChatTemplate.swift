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
        var out = PieceBuilder()
        if let first = messages.first, first.role == .system {
            out.control("<|im_start|>")
            out.text("system\n")
            for case .text(let text) in first.content { out.text(text) }
            out.control("<|im_end|>")
            out.text("\n")
        }
        var imageCount = 0
        func renderContent(_ content: [ContentPart]) {
            for part in content {
                switch part {
                case .text(let text):
                    out.text(text)
                case .image:
                    imageCount += 1
                    if addVisionID { out.text("Picture \(imageCount): ") }
                    out.image(imageCount - 1)
                }
            }
        }
        for (index, message) in messages.enumerated() {
            switch message.role {
            case .system:
                continue
            case .user:
                out.control("<|im_start|>")
                out.text("user\n")
                renderContent(message.content)
                out.control("<|im_end|>")
                out.text("\n")
            case .assistant:
                out.control("<|im_start|>")
                out.text("assistant\n")
                for case .text(let text) in message.content { out.text(text) }
                out.control("<|im_end|>")
                out.text("\n")
            case .tool:
                if index == 0 || messages[index - 1].role != .tool {
                    out.control("<|im_start|>")
                    out.text("user")
                }
                out.text("\n")
                out.control("<tool_response>")
                out.text("\n")
                renderContent(message.content)
                out.text("\n")
                out.control("</tool_response>")
                if index == messages.count - 1 || messages[index + 1].role != .tool {
                    out.control("<|im_end|>")
                    out.text("\n")
                }
            }
        }
        if addGenerationPrompt {
            out.control("<|im_start|>")
            out.text("assistant\n")
        }
        return out.pieces
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
